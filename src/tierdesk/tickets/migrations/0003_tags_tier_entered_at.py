from django.db import migrations, models
from django.db.models import F, Q


def tier_entered_at_from_created(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Existing tickets have no record of when they reached their tier: their creation is
    # the best lower bound ("time in tier" can only overstate, never hide, a wait).
    Ticket = apps.get_model("tickets", "Ticket")
    Ticket.objects.update(tier_entered_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0002_tier_queue_index"),
        ("tiers", "0002_default_catalog"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50, unique=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="ticket",
            name="tags",
            field=models.ManyToManyField(blank=True, related_name="tickets", to="tickets.tag"),
        ),
        migrations.AddField(
            model_name="ticket",
            name="tier_entered_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(tier_entered_at_from_created, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ticket",
            name="tier_entered_at",
            field=models.DateTimeField(),
        ),
        migrations.AlterField(
            model_name="timelineentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("field_changed", "Field changed"),
                    ("status_changed", "Status changed"),
                    ("comment", "Reply"),
                    ("internal_note", "Internal note"),
                    ("attachment", "Attachment"),
                    ("routed", "Routed"),
                    ("assigned", "Assigned"),
                    ("escalated", "Escalated"),
                    ("de_escalated", "De-escalated"),
                ],
                max_length=24,
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=Q(
                    status__in=[
                        "in_progress",
                        "new",
                        "open",
                        "pending_customer",
                        "pending_third_party",
                    ]
                ),
                fields=["tier", "tier_entered_at"],
                name="ticket_open_tier_age",
            ),
        ),
    ]
