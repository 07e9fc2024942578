"""The nginx/ snippets themselves: they parse in the shipped example, and avoid the traps of
FIELD-NOTES (no Debian fastcgi_params, CONTENT_LENGTH only where a body is passed)."""

from __future__ import annotations

import re
import subprocess

from harness import NGINX, SNIPPETS


def test_example_server_conf_parses(tmp_dir):
    example = (SNIPPETS / "example-server.conf").read_text()
    assert "/usr/local/share/charge-gate/nginx/" in example
    cache = (SNIPPETS / "charge-gate-cache.conf").read_text().replace("/var/lib/nginx/charge-gate-deny", f"{tmp_dir}/deny")
    (tmp_dir / "cache.conf").write_text(cache)
    (tmp_dir / "example.conf").write_text(
        example.replace("/usr/local/share/charge-gate/nginx/charge-gate-cache.conf", str(tmp_dir / "cache.conf"))
        .replace("/usr/local/share/charge-gate/nginx", str(SNIPPETS)))
    (tmp_dir / "nginx.conf").write_text(
        f"pid {tmp_dir}/nginx.pid;\nerror_log {tmp_dir}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_dir}/b;\n  proxy_temp_path {tmp_dir}/p;\n"
        f"  fastcgi_temp_path {tmp_dir}/f;\n  uwsgi_temp_path {tmp_dir}/u;\n  scgi_temp_path {tmp_dir}/s;\n"
        f"  include {tmp_dir}/example.conf;\n}}\n")
    r = subprocess.run([NGINX, "-t", "-q", "-p", f"{tmp_dir}/", "-c", str(tmp_dir / "nginx.conf"),
                        "-e", str(tmp_dir / "error.log")], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_snippets_avoid_the_fastcgi_params_traps():
    texts = {p.name: p.read_text() for p in SNIPPETS.glob("charge-gate-*.conf")}
    assert set(texts) == {"charge-gate-http.conf", "charge-gate-server.conf", "charge-gate-protect.conf",
                          "charge-gate-usage.conf", "charge-gate-fetch.conf", "charge-gate-metrics.conf",
                          "charge-gate-cache.conf", "charge-gate-settle.conf", "charge-gate-server-keepalive.conf"}
    for name, text in texts.items():
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert not re.search(r"include\s+\S*fastcgi", code), name
        assert not re.search(r"^\s*upstream\s", code, re.M), name  # the operator defines it
    for profile in ("charge-gate-server.conf", "charge-gate-server-keepalive.conf"):
        server = texts[profile]
        assert "CONTENT_LENGTH" not in "\n".join(line.split("#", 1)[0] for line in server.splitlines()), profile
        assert "fastcgi_pass_request_body off;" in server, profile
    usage = texts["charge-gate-usage.conf"]
    # CONTENT_LENGTH exactly once in each location that passes a body (top-off, plan, settle),
    # never in the others.
    blocks = re.findall(r"^location\s[^{]*\{(.*?)^\}", usage, re.M | re.S)
    assert len(blocks) >= 7, blocks
    with_body = 0
    for block in blocks:
        code = "\n".join(line.split("#", 1)[0] for line in block.splitlines())
        body = "fastcgi_pass_request_body on;" in code
        with_body += body
        assert len(re.findall(r"^\s*fastcgi_param\s+CONTENT_LENGTH\s", code, re.M)) == (1 if body else 0), block
    assert with_body == 3
