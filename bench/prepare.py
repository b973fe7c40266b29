"""Bench fixtures made through the project's own services (run by bench.run in a subprocess).

Creates one API client with every scope and one signing key per load-generator process
(throttling is per key, as callers spread load over keys), plus the wallets the load
spreads over. Prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import uuid


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amani.settings.base")
    import django

    django.setup()

    from access.models import Scope
    from access.services import api_client_create, api_key_create
    from events.models import BalanceBucket, WalletEvent
    from wallets.models import Wallet

    keys_wanted = int(sys.argv[1])
    wallets_wanted = int(sys.argv[2])

    client, first = api_client_create(name=f"bench-{uuid.uuid4().hex[:8]}", scopes=list(Scope.values))
    issued = [first] + [api_key_create(client=client) for _ in range(keys_wanted - 1)]
    wallets = Wallet.objects.bulk_create(
        Wallet(
            user_id=uuid.uuid4(),
            provider="fincra",
            provider_account_id=f"bench_{uuid.uuid4().hex}",
        )
        for _ in range(wallets_wanted + 1)
    )
    deep = wallets.pop()
    json.dump(
        {
            "keys": [{"key_id": key.key_id, "secret": key.secret} for key in issued],
            "wallets": [{"pk": wallet.pk, "id": str(wallet.public_id)} for wallet in wallets],
            "deep_wallet": {"pk": deep.pk, "id": str(deep.public_id)},
            "event_table": WalletEvent._meta.db_table,
            "bucket_table": BalanceBucket._meta.db_table,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
