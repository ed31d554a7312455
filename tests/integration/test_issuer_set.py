"""revo issuer set: rotating the delegated responder, changing validities and URLs; the
issuer's certificate and hashes stay, every change is journaled, bad input changes
nothing."""


def test_rotate_delegated_responder_and_settings(inited, ca1, ocsp_cert, leaf):
    inited("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    before = inited("issuer", "list", json=True)[0]
    j = inited("issuer", "set", "ca1", "--ocsp-cert", ocsp_cert.pem_path, "--ocsp-key",
               leaf.key_path, "--ocsp-validity", "2d", "--crl-url", "http://crl.example/ca1.crl",
               json=True)
    assert ocsp_cert.cn in j["ocsp_cert_subject"]
    assert j["ocsp_validity"] == 2 * 86400
    assert j["crl_url"] == "http://crl.example/ca1.crl"
    after = inited("issuer", "list", json=True)[0]
    for k in ("id", "name", "subject", "sha1_name_hash", "sha1_key_hash", "sha256_name_hash",
              "sha256_key_hash", "key", "created"):
        assert after[k] == before[k]
    log = inited("log", json=True)
    assert log[-1]["op"] == "issuer-set" and "--ocsp-validity 2d" in log[-1]["detail"]
    # the responder signer can be removed again, and a URL cleared with ""
    j = inited("issuer", "set", "ca1", "--no-ocsp-signer", "--crl-url", "", json=True)
    assert j["ocsp_cert_subject"] is None and j["ocsp_key"] is None and j["crl_url"] is None


def test_bad_settings_change_nothing(inited, ca1, ca2, ocsp_cert, leaf):
    inited("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    before = inited("issuer", "list", json=True)
    log = inited("log", json=True)
    plain = leaf(0x7100, "not-a-responder", ca1)
    inited.fail("issuer", "set", "ca1", "--ocsp-cert", plain.pem_path, "--ocsp-key", leaf.key_path)
    inited.fail("issuer", "set", "ca1", "--key", ca2.key_path)
    inited.fail("issuer", "set", "ca1", "--crl-every", "8d")
    inited.fail("issuer", "set", "ca1", "--crl-url", "ftp://x")
    inited.fail("issuer", "set", "nope", "--crl-every", "1h")
    inited("issuer", "set", "ca1", "--ocsp-cert", ocsp_cert.pem_path, expect=2)
    assert inited("issuer", "list", json=True) == before
    assert inited("log", json=True) == log
