"""API clients, keys and nonces now belong to the access app (issue 16).

State only: the tables stay as they are (access.0001_initial takes them over by db_table).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("amani", "0002_verbose_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiKey"),
                migrations.DeleteModel(name="ApiClient"),
                migrations.DeleteModel(name="ApiNonce"),
            ],
            database_operations=[],
        ),
    ]
