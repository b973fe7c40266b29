"""docs/api.md, the API reference in the repository, is the OpenAPI schema as it is now."""

from django.core.management import call_command


def test_the_api_reference_is_up_to_date():
    """If this fails, run `python manage.py api_reference` and commit docs/api.md."""
    call_command("api_reference", "--check")
