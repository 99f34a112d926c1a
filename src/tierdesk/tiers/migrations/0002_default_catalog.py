"""The default tiers, skills and MSP-wide service catalog. All of it is data: change it
through the API or the CLI afterwards."""

from django.db import migrations

TIERS = [
    (
        "L1",
        "Level 1 - Service desk",
        1,
        "First contact: logging and routing, password resets and logins, known fixes from the "
        "knowledge base. Most issues should end here.",
    ),
    (
        "L2",
        "Level 2 - Technical support",
        2,
        "Deeper troubleshooting with logs and diagnostic tools; resolves what L1 cannot.",
    ),
    (
        "L3",
        "Level 3 - Experts",
        3,
        "Code and infrastructure fixes, root-cause analysis and permanent fixes that stop repeats.",
    ),
]

SKILLS = [
    ("accounts", "Accounts and identity"),
    ("email", "Email and collaboration"),
    ("network", "Networking"),
    ("hardware", "Hardware and peripherals"),
    ("software", "Desktop software"),
    ("backup", "Backup and recovery"),
    ("server", "Servers and virtualization"),
    ("security", "Security"),
]

# slug, name, default tier, impact, urgency, required skills, description
CATEGORIES = [
    (
        "access",
        "Access & accounts",
        "L1",
        3,
        2,
        ["accounts"],
        "Password resets, locked accounts, new users, permissions.",
    ),
    ("email", "Email", "L1", 2, 2, ["email"], "Mailboxes, calendars, distribution lists."),
    ("network", "Network", "L2", 2, 2, ["network"], "Connectivity, VPN, Wi-Fi, firewalls."),
    ("hardware", "Hardware", "L1", 3, 3, ["hardware"], "Laptops, printers, peripherals."),
    ("software", "Software", "L1", 3, 3, ["software"], "Installs, licences, application errors."),
    ("backup", "Backup", "L2", 2, 2, ["backup"], "Backup failures and restores."),
    ("server", "Server", "L2", 2, 1, ["server"], "Server outages, performance, capacity."),
    ("security", "Security", "L2", 1, 1, ["security"], "Phishing, malware, incidents."),
]


def forwards(apps, schema_editor):
    Tier = apps.get_model("tiers", "Tier")
    Skill = apps.get_model("tiers", "Skill")
    Category = apps.get_model("tiers", "Category")
    tiers = {}
    for code, name, level, description in TIERS:
        tiers[code], _ = Tier.objects.get_or_create(
            code=code, defaults={"name": name, "level": level, "description": description}
        )
    skills = {}
    for slug, name in SKILLS:
        skills[slug], _ = Skill.objects.get_or_create(slug=slug, defaults={"name": name})
    for slug, name, tier, impact, urgency, required, description in CATEGORIES:
        category, created = Category.objects.get_or_create(
            organization=None,
            slug=slug,
            defaults={
                "name": name,
                "default_tier": tiers[tier],
                "default_impact": impact,
                "default_urgency": urgency,
                "description": description,
            },
        )
        if created:
            category.required_skills.set([skills[s] for s in required])


class Migration(migrations.Migration):
    dependencies = [("tiers", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
