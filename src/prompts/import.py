# Reads the prompt texts out of a checkout of the original MLAgentBench
# without running any of it: each source file is parsed with `ast` and only
# string constants are taken (module-level assignments and the keyword
# arguments of ActionInfo(...) calls). Prints one JSON object on stdout;
# a problem is printed on stderr as one line and the exit status is 2.
import ast
import json
import os
import sys

root = sys.argv[1]


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def parse(rel):
    path = os.path.join(root, rel)
    try:
        with open(path, encoding="utf-8") as f:
            return ast.parse(f.read(), filename=path)
    except OSError as e:
        fail(f"cannot read {rel}: {e.strerror}")
    except SyntaxError as e:
        fail(f"{rel} is not Python this interpreter can parse (line {e.lineno})")


def text(node, where):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    fail(f"{where} is not a plain string")


def module_value(tree, rel, name):
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id == name:
                    return node.value
    fail(f"{rel} has no module-level {name}")


def str_dict(node, where):
    if not isinstance(node, ast.Dict):
        fail(f"{where} is not a dict")
    out = {}
    for k, v in zip(node.keys, node.values):
        out[text(k, where + " key")] = text(v, where + " value")
    return out


AGENTS = "MLAgentBench/agents/"
research = parse(AGENTS + "agent_research.py")
base = parse(AGENTS + "agent.py")
result = {
    "research_prompt": text(
        module_value(research, "agent_research.py", "initial_prompt"),
        "agent_research.py initial_prompt",
    ),
    "base_prompt": text(
        module_value(base, "agent.py", "initial_prompt"), "agent.py initial_prompt"
    ),
    "fields": str_dict(
        module_value(research, "agent_research.py", "format_prompt_dict"),
        "agent_research.py format_prompt_dict",
    ),
    "actions": {},
}
for rel in ["MLAgentBench/low_level_actions.py", "MLAgentBench/high_level_actions.py"]:
    for node in ast.walk(parse(rel)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
        if called != "ActionInfo":
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        where = f"an ActionInfo(...) call in {rel} (line {node.lineno})"
        for key in ["name", "description", "usage", "return_value"]:
            if key not in kw:
                fail(f"{where} has no {key}=")
        name = text(kw["name"], where + " name")
        result["actions"][name] = {
            "description": text(kw["description"], f"{name}: description"),
            "return_value": text(kw["return_value"], f"{name}: return_value"),
            "usage": str_dict(kw["usage"], f"{name}: usage"),
        }
json.dump(result, sys.stdout)
