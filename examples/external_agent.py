#!/usr/bin/env python3
"""A minimal external agent for `mlab run --agent external`.

It lists the workspace, runs train.py, asks the run's model once what the
output means, and submits. Standard library only. Run it with:

    mlab run --task digits --agent external \
        --agent-cmd "python3 examples/external_agent.py" --llm gpt-4o

The protocol (one JSON object per line on stdin and stdout) is described in
docs/agent-protocol.md. Anything this agent prints for people goes to
stderr, which mlab keeps in agent_log/agent_stderr.log; stdout carries only
protocol messages.
"""

import json
import sys


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def receive():
    line = sys.stdin.readline()
    if not line:
        # mlab closed our stdin: the run is over.
        sys.exit(0)
    message = json.loads(line)
    if message["type"] == "end":
        print(f"run ended: {message['reason']}", file=sys.stderr)
        sys.exit(0)
    return message


def act(name, args):
    """Takes one action; returns the observation message."""
    send({"type": "action", "name": name, "args": args})
    observation = receive()
    print(f"step {observation['step']}: {name}", file=sys.stderr)
    if observation["done"]:
        receive()  # the end message; exits
    return observation


def ask(prompt):
    """One call of the run's model through mlab; None when there is none."""
    send({
        "type": "llm",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 300,
        "temperature": 0.2,
    })
    reply = receive()
    if reply["type"] == "llm_result":
        return reply["text"].strip()
    print(f"model call failed ({reply['kind']}): {reply['message']}", file=sys.stderr)
    return None


def main():
    start = receive()
    assert start["type"] == "start", start
    names = [a["name"] for a in start["actions"]]
    send({"type": "log", "text": f"example agent started; {len(names)} actions offered"})

    files = act("List Files", {"dir_path": "."})["text"]
    script = "train.py" if "train.py" in files.split() else None
    output = "(there is no train.py to run)"
    if script:
        output = act("Execute Script", {"script_name": script})["text"]

    summary = None
    if start["llm"]:
        summary = ask(
            "A training script was run for this research problem:\n"
            f"{start['research_problem']}\n\nIt printed:\n{output}\n\n"
            "In one sentence, what result did it report?"
        )
    answer = summary or "Ran the starter script unchanged."
    send({"type": "final", "answer": answer})
    receive()  # the observation of the final answer
    receive()  # the end message; exits


if __name__ == "__main__":
    main()
