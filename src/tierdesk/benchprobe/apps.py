from django.apps import AppConfig


class BenchprobeConfig(AppConfig):
    name = "tierdesk.benchprobe"
    label = "benchprobe"
    verbose_name = "Benchmark probe"
