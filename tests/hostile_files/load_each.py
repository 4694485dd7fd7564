"""Child process of test_hostile_corpus: ``load_each.py CAP_BYTES SECONDS LIST.json
[VALID_APP_FILE...]`` loads each ``[path, kind]`` of the list with at most CAP_BYTES more
address space than the child maps once started and a per-file alarm of SECONDS, and prints one
JSON line per file: ``ok``, ``ModelFileError``, ``timeout`` or any other exception's class."""

from __future__ import annotations

import json
import resource
import signal
import sys


class Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise Timeout


def main() -> None:
    cap, seconds, listing = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import torch

    torch.set_num_threads(1)
    from lstmkit.apps.sentiment import model as _sentiment  # noqa: F401
    from lstmkit.apps.speech import evaluate as _speech  # noqa: F401 - shared libraries
    from lstmkit.apps.textgen import model as _textgen  # noqa: F401  (mapped before the cap)
    from lstmkit.apps.translate import decode as _translate  # noqa: F401
    from lstmkit.layers import LSTM, Dense, Embedding
    from lstmkit.models import ModelFileError, Sequential, load_model
    from lstmkit.serve.handlers import load_handler

    for warm in sys.argv[4:]:  # valid application files: their lazily loaded libraries
        load_handler("warm", warm)  # (librosa's llvmlite) are mapped before the cap
    # the cap is CAP_BYTES more address space than torch, the applications and their libraries
    # already map (several GiB of it reserved, not used)
    size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith("VmSize:"))  # fmt: skip
    resource.setrlimit(resource.RLIMIT_AS, (size + cap, size + cap))
    print(json.dumps(["<address space at start>", size]), flush=True)

    signal.signal(signal.SIGALRM, _alarm)
    for path, kind in json.loads(open(listing).read()):
        signal.alarm(seconds)
        try:
            if kind == "app":
                load_handler("m", path)
            elif kind == "model":
                load_model(path)
            else:
                model = Sequential([Embedding(15, 4), LSTM(6), Dense(1)])
                model.build((None, 6))
                model.load_weights(path)
            outcome = "ok"
        except ModelFileError:
            outcome = "ModelFileError"
        except Timeout:
            outcome = "timeout"
        except BaseException as e:
            outcome = f"{type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.alarm(0)
        print(json.dumps([path, outcome]), flush=True)


if __name__ == "__main__":
    main()
