import pytest

from tests.factories import ResearcherFactory, StudyFactory, UserFactory


@pytest.fixture
def researcher(db):
    return ResearcherFactory()


@pytest.fixture
def outsider(db):
    """A logged-in user who is not a researcher."""
    return UserFactory(username="outsider")


@pytest.fixture
def study(db):
    return StudyFactory(slug="koala-vs-chatgpt", title="Koala vs ChatGPT")


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client
