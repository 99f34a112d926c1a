from django.db import migrations, models


class Migration(migrations.Migration):
    """ConfigState gets one row per cache group (core.config); the one row there is so far
    is the shared configuration's, "config". Rows of other groups are made after migrating
    (core.config.ensure_groups)."""

    dependencies = [("core", "0002_configstate")]

    operations = [
        migrations.AddField(
            model_name="configstate",
            name="name",
            field=models.CharField(default="config", max_length=40, unique=True),
            preserve_default=False,
        ),
    ]
