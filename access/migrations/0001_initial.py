"""API clients, keys and nonces, moved here from the amani app (issue 16).

State only: the tables amani.0001_initial created keep their names (db_table). The
content types follow the models, so permissions granted on them and the admin's log
entries keep pointing at the same rows.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MODELS = ("apiclient", "apikey", "apinonce")


def content_types_to_access(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(app_label="amani", model__in=MODELS).update(
        app_label="access"
    )


def content_types_to_amani(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(app_label="access", model__in=MODELS).update(
        app_label="amani"
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("amani", "0003_move_api_access_models"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiClient",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100, unique=True)),
                        (
                            "scopes",
                            models.JSONField(
                                default=list, help_text="Subset of: wallets:read, wallets:write, events:read, events:write"
                            ),
                        ),
                        ("is_active", models.BooleanField(default=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                    ],
                    options={"db_table": "amani_apiclient", "ordering": ["name"], "verbose_name": "API client"},
                ),
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key_id", models.CharField(editable=False, max_length=64, unique=True)),
                        ("secret_encrypted", models.TextField(editable=False)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        (
                            "client",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="keys", to="access.apiclient"
                            ),
                        ),
                    ],
                    options={"db_table": "amani_apikey", "ordering": ["-created_at"], "verbose_name": "API key"},
                ),
                migrations.CreateModel(
                    name="ApiNonce",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key_id", models.CharField(max_length=64)),
                        ("nonce", models.CharField(max_length=64)),
                        ("seen_at", models.DateTimeField(db_index=True)),
                    ],
                    options={
                        "db_table": "amani_apinonce",
                        "constraints": [models.UniqueConstraint(fields=("key_id", "nonce"), name="uq_apinonce_key_nonce")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_access, content_types_to_amani, elidable=False),
    ]
