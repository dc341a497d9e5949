# Values across languages, the Python side: call a Rust job's actor with
# plain data, and serve an actor that a Rust job calls. Its Rust partner is
# examples/cross_language; detached actors live on a cluster's head:
#
#   wray run --address A --token T cross_language.wasm -- serve           (Rust: "inventory")
#   wray run --address A --token T cross_language_py.wasm -- use-rust
#   wray run --address A --token T cross_language_py.wasm -- serve        (Python: "tally")
#   wray run --address A --token T cross_language.wasm -- use-python
import array
import sys
import time

import wray as ray


@ray.remote
class Tally:
    """Counts words; called from Rust with plain values."""

    def __init__(self):
        self.words = {}

    def add(self, word, n):
        self.words[word] = self.words.get(word, 0) + n
        return self.words[word]

    def counts(self):
        return self.words

    def summary(self, numbers):
        # An f64 array from Rust arrives as array.array('d').
        return {"mean": sum(numbers) / len(numbers), "n": len(numbers), "words": sorted(self.words)}

    def each(self):
        # A generator: a Rust caller reads its items as they are made with
        # DynActor::call_generator.
        for word in sorted(self.words):
            yield {"word": word, "count": self.words[word]}

    def stamped(self, n):
        # Items stamped with when they were made, for the Rust caller to see
        # how far its window holds the generator back.
        for _ in range(n):
            yield time.time()

    def python_only(self):
        # A set is Python's own: it cannot answer a caller in another language.
        return {1, 2}


def use_rust():
    inv = ray.get_actor("inventory")
    print("inventory is a", inv._class_name)
    values = {
        "nothing": None,
        "flag": True,
        "count": 42,
        "ratio": 0.25,
        "name": "wray",
        "raw": b"\x00\xff",
        "mixed": [1, "two", [3.0, None]],
        "config": {"lr": 0.01, "layers": [11, 10, 8, 1]},
        "weights": array.array("d", [0.5, 1.5, 2.0]),
        "ids": array.array("q", [7, 8, 9]),
    }
    for key, value in values.items():
        ray.get(inv.put.remote(key, value))
    for key, value in values.items():
        back = ray.get(inv.get.remote(key))
        print(f"{key}: {back!r} {'same' if back == value else 'DIFFERENT'}")
    print("created by:", ray.get(inv.get.remote("created by")))
    print("describe:", ray.get(inv.describe.remote()))
    print("total:", ray.get(inv.total.remote([1, 2, 3.5])))
    print("total of an array:", ray.get(inv.total.remote(array.array("f", [0.5, 0.25]))))
    # A value only Python reads is refused before it is sent.
    try:
        inv.put.remote("pair", (1, 2))
    except TypeError as e:
        print("TypeError:", e)


def serve():
    tally = Tally.options(name="tally", lifetime="detached").remote()
    print("tally is up:", ray.get(tally.add.remote("python", 1)))


if __name__ == "__main__":
    {"use-rust": use_rust, "serve": serve}[sys.argv[1]]()
