import secrets

from django.db import migrations, models


def first_token(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("core", "ConfigState").objects.create(id=1, token=secrets.token_hex(16))


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="ConfigState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token", models.CharField(max_length=32)),
            ],
        ),
        migrations.RunPython(first_token, migrations.RunPython.noop),
    ]
