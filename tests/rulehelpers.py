"""Helpers shared by the rule-editing, re-evaluation and change-feed tests."""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

from tests.conftest import H20, H100, RTX_4090_D
from tests.factories import catalogue, product

ROOT = Path(__file__).resolve().parents[1]

# The catalogue of the end-to-end scenario: China (CN, HK), Macau, D:5 members and unaffected destinations.
WATCHED = ["CN", "HK", "MO", "RU", "IR", "DE", "JP", "AE"]
D5_AND_CHINA = {"CN", "HK", "MO", "RU", "IR"}

H20_APRIL_2025_OVERLAY = {
    "op": "add_overlay", "id": "h20-letter-2025-04", "title": "H20 letter: licence for China, Macau and D:5",
    "citation": "Nvidia Form 8-K, 2025-04-15 (informed 2025-04-09)", "effective_from": "2025-04-09",
    "products": ["nvidia/h20", "nvidia/h20 *"], "destinations": ["CN", "MO"], "groups": ["D:5"],
    "headquarters_groups": ["D:5"], "headquarters": ["MO"],
    "requirement": "license_required", "review_policy": "presumption_of_denial", "precedence": 30,
    "tests": [{"name": "h20 needs a licence for China from 2025-04-09", "as_of": "2025-04-09",
               "product": {"name": "H20", "vendor": "NVIDIA", "family": "H20", "kind": "ic", "datacenter": True,
                           "tpp": 2368, "die_area_mm2": 814},
               "destinations": ["CN", "DE"],
               "expect": {"licences": {"CN": {"requirement": "license_required",
                                              "review_policy": "presumption_of_denial"},
                                       "DE": {"requirement": "no_license_required"}}}}],
}

H20_SUMMER_2025_APPROVAL = {
    "op": "add_overlay", "id": "h20-approval-2025-07", "title": "H20 to China: presumption of approval",
    "citation": "US government statements, 2025-07-14", "effective_from": "2025-07-14",
    "products": ["nvidia/h20", "nvidia/h20 *"], "destinations": ["CN"],
    "requirement": "license_required", "review_policy": "presumption_of_approval", "precedence": 35,
}


def rules_without_h20_packs(tmp_path: Path) -> str:
    """A copy of rules/ without the April and July 2025 H20/MI308 packs."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    for pattern in ("2025-04-09-*", "2025-07-14-*"):
        for f in (target / "packs").glob(pattern):
            f.unlink()
    return str(target)


def make_scenario_catalogue(app, name: str = "scenario") -> int:
    products = [product(H20, sku="H20"), product(H100, sku="H100"), product(RTX_4090_D, sku="RTX-4090-D")]
    return catalogue(app, products, name=name, destinations=WATCHED)


def change_set(items) -> set[tuple[str, str]]:
    return {(c["sku"], c["destination"]) for c in items}


class Receiver:
    """A local webhook receiver: answers `codes` in turn (then 200) and keeps every request."""

    def __init__(self, codes=()):
        self.codes = list(codes)
        self.requests: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                code = outer.codes.pop(0) if outer.codes else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
