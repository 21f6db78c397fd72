"""Client configuration from settings (no broker needed)."""

from __future__ import annotations

from kafka_runtime.clients import as_kafka, client_config, member_id
from kafka_runtime.publishing import encode_key
from odia_stream.settings import KafkaSettings, OdiaSettings


def test_a_bootstrap_string_and_settings_configure_clients_alike() -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9092,k2:9092")
    assert client_config(kafka) == client_config("k1:9092,k2:9092") == {"bootstrap.servers": "k1:9092,k2:9092", "security.protocol": "PLAINTEXT"}
    assert as_kafka(kafka) is kafka


def test_member_ids_are_per_replica_and_role() -> None:
    fixed = OdiaSettings(app_id="shop", kafka=KafkaSettings(group_instance_id="replica-7"))
    assert member_id(fixed, "serving") == "replica-7-serving"
    assert member_id(fixed, "trainer") == "replica-7-trainer"
    default = OdiaSettings(app_id="shop")
    assert member_id(default, "serving").startswith("shop-") and member_id(default, "serving").endswith("-serving")


def test_keys_are_bytes_on_the_wire() -> None:
    assert encode_key("歌") == "歌".encode()
    assert encode_key(b"\x00k") == b"\x00k"
    assert encode_key(None) is None
