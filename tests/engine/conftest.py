from tests.sdk.conftest import Store, store  # noqa: F401 - shared fixture
