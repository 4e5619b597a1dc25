"""Private: save a layer's `keras.random.SeedGenerator` state with its weights.

Keras 3 stores a layer's own variables in weights files (`model.save`, `save_weights`, the
checkpoints of `keras.callbacks.BackupAndRestore`) but not the state of its seed generators,
so a model restored mid-training draws its dropout masks again from the seed: a resumed run
differs from the uninterrupted one. `SeedStateMixin` adds the state of `self.seed_generator`
to the stored variables under its own key, and restores it when the key is there (files written
without it load as before).
"""

_KEY = "seed_generator_state"


class SeedStateMixin:
    """Mixed into a `keras.layers.Layer` holding `self.seed_generator`."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        own = {key: store[key] for key in keys if key != _KEY}
        super().load_own_variables(own)
        if _KEY in keys:
            self.seed_generator.state.assign(store[_KEY])
