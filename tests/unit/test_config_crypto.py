"""Config values at rest: encrypted with the server's key; a lost or wrong key is a clear error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockyard.secrets.crypto import KEY_FILE, ConfigCipher, ConfigKeyError
from dockyard.secrets.resolve import is_config_name, redact, values_digest


def test_the_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = ConfigCipher.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    token = first.encrypt("hunter2-value")
    assert "hunter2" not in token
    again = ConfigCipher.load_or_create(tmp_path)
    assert again.decrypt(token, name="DB_PASSWORD") == "hunter2-value"


def test_a_replaced_key_is_a_clear_error_not_garbage(tmp_path: Path) -> None:
    token = ConfigCipher.load_or_create(tmp_path / "a").encrypt("hunter2-value")
    other = ConfigCipher.load_or_create(tmp_path / "b")
    with pytest.raises(ConfigKeyError) as caught:
        other.decrypt(token, name="DB_PASSWORD")
    message = caught.value.message
    assert "DB_PASSWORD" in message and str(tmp_path / "b" / KEY_FILE) in message
    assert "hunter2" not in caught.value.message


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key\n")
    with pytest.raises(ConfigKeyError) as caught:
        ConfigCipher.load_or_create(tmp_path)
    assert KEY_FILE in caught.value.message


def test_names_digests_and_redaction() -> None:
    assert is_config_name("DB_PASSWORD") and is_config_name("_x")
    assert not is_config_name("1X") and not is_config_name("a-b") and not is_config_name("")
    assert not is_config_name("A" * 65)
    one = values_digest(b"k", {"A": "1", "B": "2"}, ["A"])
    assert one == values_digest(b"k", {"A": "1", "B": "changed"}, ["A"])  # B unused
    assert one != values_digest(b"k", {"A": "2"}, ["A"])
    assert one != values_digest(b"other", {"A": "1"}, ["A"])
    assert redact("pw=hunter2 and hunter2x", ["hunter2", "abc"]) == "pw=**** and ****x"
