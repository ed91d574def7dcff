"""Write a rulebook back to the rules/ YAML layout (one file per pack + country_groups.yaml)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml


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
