"""PostgreSQL: the articles' search documents move from a column of ``kb_article`` to a
table of their own, ``kb_search_document`` (kb.models.SearchDocument).

A search reads the document of every article that matches any of its words (thousands in
a large knowledge base). In the article's row, next to its Markdown and text, the documents
were spread over a wide table and its TOAST storage: reading them cost more than ranking
them. The narrow table holds only the documents (see kb.search). On SQLite, whose FTS5
table is already its own, the new table stays empty."""

import django.db.models.deletion
from django.db import migrations, models

import tierdesk.kb.models

POSTGRES_UP = [
    "INSERT INTO kb_search_document (article_id, document) "
    "SELECT id, search_document FROM kb_article WHERE search_document IS NOT NULL",
    "CREATE INDEX kb_search_document_words ON kb_search_document USING GIN (document)",
    "DROP INDEX kb_article_search",
    "ALTER TABLE kb_article DROP COLUMN search_document",
]
POSTGRES_DOWN = [
    "ALTER TABLE kb_article ADD COLUMN search_document tsvector",
    "UPDATE kb_article a SET search_document = d.document "
    "FROM kb_search_document d WHERE d.article_id = a.id",
    "CREATE INDEX kb_article_search ON kb_article USING GIN (search_document)",
    "DROP INDEX kb_search_document_words",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("kb", "0006_article_embedding")]

    operations = [
        migrations.CreateModel(
            name="SearchDocument",
            fields=[
                (
                    "article",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="kb.article",
                    ),
                ),
                ("document", tierdesk.kb.models.TsVectorField()),
            ],
            options={"db_table": "kb_search_document"},
        ),
        migrations.RunPython(_run(POSTGRES_UP), _run(POSTGRES_DOWN)),
    ]
