#!/usr/bin/env python3
"""OPA itself, as an oracle for assay's Rego evaluation.

Reads one case per line on standard input, a JSON object:
  {"modules": [{"path": "...", "text": "..."}], "data": {...}, "input": ..., "query": "x := ..."}
("input" may be absent: no input), evaluates the query with OPA 1.20.2's engine embedded by
PyPI's opa-golib-python-bindings, and writes one JSON line per case:
  {"results": [<bindings of each result>, ...]}   or   {"error": "<code>: <message>"}
"""
import json
import sys

from opa_bindings import OpaEngine, OpaError


def evaluate(case):
    with OpaEngine() as engine:
        try:
            for module in case["modules"]:
                engine.add_policy(module["path"], module["text"])
            if case.get("data"):
                engine.add_data(case["data"])
            if "input" in case:
                rows = engine.eval_query(case["query"], input=case["input"])
            else:
                rows = engine.eval_query(case["query"])
            return {"results": rows}
        except OpaError as err:
            return {"error": f"{err.code}: {err.message}"}


def main():
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(evaluate(json.loads(line)), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
