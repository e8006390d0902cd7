import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The fake GitHub and the policy gate are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from fake_github import FakeGitHub, Installation  # noqa: E402
from github_setup import APP_ID, INSTALLED, OWNER, REPOSITORY  # noqa: E402


def _rsa_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture(scope="session")
def app_key():
    """(private PEM, public PEM) of the test App."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _rsa_pem(key), public


@pytest.fixture(scope="session")
def other_key():
    return _rsa_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def github(tmp_path, app_key):
    fake = FakeGitHub(root=tmp_path / "github", app_id=APP_ID, public_key_pem=app_key[1],
                      installations=[Installation(77, OWNER, [REPOSITORY, f"{OWNER}/other"], dict(INSTALLED))])
    fake.create_repository(REPOSITORY, branches={"feature": None, "release": None})
    fake.create_repository(f"{OWNER}/other")
    fake.start()
    yield fake
    fake.stop()
