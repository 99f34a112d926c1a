"""The articles' full-text index, by engine (see kb.search): an FTS5 table and its
vocabulary on SQLite; a tsvector column with a GIN index on PostgreSQL."""

from django.db import migrations

SQLITE_UP = [
    "CREATE VIRTUAL TABLE kb_search USING fts5("
    "title, tags, body, tokenize = 'porter unicode61 remove_diacritics 2', "
    "prefix = '3 4')",
    "CREATE VIRTUAL TABLE kb_search_vocabulary USING fts5vocab(kb_search, row)",
]
SQLITE_DOWN = ["DROP TABLE kb_search_vocabulary", "DROP TABLE kb_search"]
POSTGRES_UP = [
    "ALTER TABLE kb_article ADD COLUMN search_document tsvector",
    "CREATE INDEX kb_article_search ON kb_article USING GIN (search_document)",
]
POSTGRES_DOWN = [
    "DROP INDEX kb_article_search",
    "ALTER TABLE kb_article DROP COLUMN search_document",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("kb", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
