#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the texts in ../vectors/*.json (not committed: run again
after the vectors change). Usage: python3 fuzz/build_corpus.py"""
import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent
VECTORS = ROOT.parent / "vectors"
CORPUS = ROOT / "corpus"
HEX = re.compile(r"^[0-9a-fA-F]*$")
# Members whose value is one of the objects a target decodes on its own.
NESTED = {"entry": "entry", "cert": "certificate", "certificate": "certificate",
          "replacement": "key_replacement", "note": "identity_note", "filter": "filter"}

seeds = {}


def add(target, text):
    seeds.setdefault(target, set()).add(text)


def on_object(obj, text):
    for target in ("client_frame", "server_frame", "canonical_json"):
        add(target, text)
    if obj.get("type") == "hello":
        add("hello", text)
    for member, target in NESTED.items():
        value = obj.get(member)
        if isinstance(value, dict):
            add(target, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        elif isinstance(value, str) and value.startswith("{"):
            add(target, value)


def walk(value):
    if isinstance(value, str):
        if value.startswith("{"):
            try:
                obj = json.loads(value)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                on_object(obj, value)
            else:
                for target in ("client_frame", "server_frame", "canonical_json"):
                    add(target, value)
        elif value.startswith("/"):
            add("node_address", value)
        elif HEX.match(value) and len(value) in (62, 63, 64, 65, 66, 126, 128, 130):
            add("hex_types", value)
    elif isinstance(value, list):
        for item in value:
            walk(item)
    elif isinstance(value, dict):
        on_object(value, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        for item in value.values():
            walk(item)


for path in sorted(VECTORS.glob("*.json")):
    doc = json.loads(path.read_text())
    for group in doc["test_groups"]:
        for test in group["tests"]:
            walk(test)
            if path.name == "encodings.json" and isinstance(test.get("text"), str):
                add("hex_types", test["text"])
            if path.name == "handshake.json":
                script = list(test.get("messages") or [])
                script += [test[k] for k in ("challenge", "welcome") if isinstance(test.get(k), str)]
                add("server_handshake", "\n".join(script))
                add("client_handshake", "\n".join(script))

for target, texts in sorted(seeds.items()):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{target}: {len(texts)} seeds")
