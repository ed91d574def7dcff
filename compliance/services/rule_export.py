"""A rulebook written back in the rules/ YAML layout (one file per pack + country_groups.yaml): to a directory,
as a zip, as one YAML stream."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import yaml

from ..db import Database
from .rule_versions import get_version


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    # Quote strings YAML 1.1 would read as something else (NO -> false, 2024-01-01 -> date).
    style = '"' if re.fullmatch(r"(?i)(y|n|yes|no|on|off|true|false|null|~|\d{4}-\d\d-\d\d|[-+.\d].*)", value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def export_rulebook(content: dict, out_dir: Path) -> list[Path]:
    """Write every pack and the country groups; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "packs").mkdir(exist_ok=True)
    written = []
    for pack in content["packs"]:
        start = str(pack.get("effective_from") or "0000-00-00")
        path = out_dir / "packs" / f"{start}-{pack['id']}.yaml"
        path.write_text(dump_yaml(pack), encoding="utf-8")
        written.append(path)
    path = out_dir / "country_groups.yaml"
    path.write_text(dump_yaml(content["country_groups"]), encoding="utf-8")
    written.append(path)
    return written


def export_version(db: Database, number: int, fmt: str = "zip") -> tuple[bytes, str, str]:
    """The version in the rules/ YAML layout: a zip of files, or one multi-document YAML bundle."""
    with db.session() as s:
        v = get_version(s, number)
        content = v.content
    files: list[tuple[str, str]] = []
    for i, pack in enumerate(content["packs"]):
        # The index prefix keeps the pack order (part of the content hash) when rules/ is loaded back.
        start = str(pack.get("effective_from") or "0000-00-00")
        files.append((f"packs/{i:03d}-{start}-{pack['id']}.yaml", dump_yaml(pack)))
    files.append(("country_groups.yaml", dump_yaml(content["country_groups"])))
    if fmt == "yaml":
        body = "".join(f"--- # {name}\n{text}" for name, text in files)
        return body.encode("utf-8"), "application/yaml", f"rules-v{number}.yaml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files:
            zf.writestr(f"rules-v{number}/{name}", text)
    return buf.getvalue(), "application/zip", f"rules-v{number}.zip"
