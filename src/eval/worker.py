# mlab's grader worker: imports one task's eval.py once, then scores the
# snapshot folders it is sent, one JSON object per line.
#
#   argv:    worker.py <path of eval.py>
#   first line out:  {"ready": true}  or  {"ready": false, "error": "<traceback tail>"}
#   in:      {"id": 7, "folder": "/abs/path/step_final_files"}
#   out:     {"id": 7, "score": 0.93}  or  {"id": 7, "error": "<traceback tail>"}
#
# The protocol owns the original stdout; everything eval.py prints (from
# Python or from C code) goes to stderr instead, so it cannot corrupt a reply.
# The working directory is eval.py's folder and that folder leads sys.path,
# so a task finds its prepared data and helpers wherever mlab was started.

import json
import math
import os
import sys
import traceback

TAIL_LINES = 20


def tail(text):
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def main():
    eval_path = os.path.abspath(sys.argv[1])
    script_dir = os.path.dirname(eval_path)

    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin
    sys.stdin = open(os.devnull)

    def send(obj):
        proto.write(json.dumps(obj, allow_nan=False) + "\n")
        proto.flush()

    sys.argv = [eval_path]
    try:
        # Inside the try: a folder the sandbox does not show is reported
        # on the protocol like any other import failure, with its path.
        if not os.path.isfile(eval_path):
            raise FileNotFoundError(
                "%s is not visible to the grader (the sandbox shows the task's "
                "folders at their real paths only)" % eval_path
            )
        os.chdir(script_dir)
        sys.path.insert(0, script_dir)
        import importlib.util

        spec = importlib.util.spec_from_file_location("mlab_task_eval", eval_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["mlab_task_eval"] = module
        spec.loader.exec_module(module)
        get_score = getattr(module, "get_score", None)
        if not callable(get_score):
            raise AttributeError("eval.py defines no get_score(folder) function")
    except BaseException:
        send({"ready": False, "error": tail(traceback.format_exc())})
        return

    send({"ready": True})
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = {"id": request["id"]}
        try:
            value = get_score(request["folder"])
            try:
                score = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    "get_score returned %s, not a number" % type(value).__name__
                )
            if not math.isfinite(score):
                raise ValueError("get_score returned %r" % score)
            reply["score"] = score
        except BaseException:
            reply["error"] = tail(traceback.format_exc())
        finally:
            try:
                os.chdir(script_dir)
            except OSError:
                pass
        send(reply)


main()
