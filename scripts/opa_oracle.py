#!/usr/bin/env python3
"""OPA itself, as an oracle for assay's Rego evaluation.

Reads one case per line on standard input, a JSON object:
  {"modules": [{"path": "...", "text": "..."}], "data": {...}, "input": ..., "query": "x := ..."}
("input" may be absent: no input), evaluates the query with OPA 1.20.2's engine embedded by
PyPI's opa-golib-python-bindings, and writes one JSON line per case:
  {"results": [<bindings of each result>, ...]}   or   {"error": "<code>: <message>"}
Consecutive cases with the same modules and data share one engine (compiled once).
"""
import json
import sys

from opa_bindings import OpaEngine, OpaError


class Oracle:
    def __init__(self):
        self.key = None
        self.engine = None
        self.load_error = None

    def load(self, case):
        key = json.dumps([case["modules"], case.get("data")], sort_keys=True)
        if key == self.key:
            return
        if self.engine is not None:
            self.engine.close()
        self.key, self.engine, self.load_error = key, OpaEngine(), None
        try:
            for module in case["modules"]:
                self.engine.add_policy(module["path"], module["text"])
            if case.get("data"):
                self.engine.add_data(case["data"])
        except OpaError as err:
            self.load_error = {"error": f"{err.code}: {err.message}"}

    def evaluate(self, case):
        self.load(case)
        if self.load_error is not None:
            return self.load_error
        try:
            if "input" in case:
                rows = self.engine.eval_query(case["query"], input=case["input"])
            else:
                rows = self.engine.eval_query(case["query"])
            return {"results": rows}
        except OpaError as err:
            return {"error": f"{err.code}: {err.message}"}


def evaluate(case):
    """One case on a fresh engine."""
    return Oracle().evaluate(case)


def main():
    oracle = Oracle()
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(oracle.evaluate(json.loads(line)), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
