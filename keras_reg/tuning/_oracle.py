"""KerasTuner oracles whose first trials evaluate fixed reference values."""

import keras_tuner


class _ReferencesFirst:
    """Oracle mixin: the references' values first, then the oracle's own suggestions.

    `populate_space` (the documented hook of custom oracles) returns the values of the next
    reference not yet issued; which trial evaluated which reference is part of the oracle's
    saved state, so a resumed search does not repeat them. For Hyperband the references take
    the places of the first brackets' first-round (random) candidates, keeping Hyperband's
    `tuner/...` epochs, so they compete under its successive halving.
    """

    def set_references(self, references):
        """`references`: a list of `(label, values)`, values as `HyperParameters.values`."""
        self.reference_values = list(references)
        if not hasattr(self, "reference_trials"):
            self.reference_trials = {}

    def _pending(self):
        issued = set(getattr(self, "reference_trials", {}).values())
        return [(label, v) for label, v in getattr(self, "reference_values", [])
                if label not in issued]

    def populate_space(self, trial_id):
        pending = self._pending()
        if not pending:
            return super().populate_space(trial_id)
        label, values = pending[0]
        if isinstance(self, keras_tuner.oracles.HyperbandOracle):
            response = super().populate_space(trial_id)
            suggested = response.get("values") or {}
            if (response.get("status") != "RUNNING" or suggested.get("tuner/round") != 0
                    or "tuner/trial_id" in suggested):
                return response
            values = {**suggested, **values}
        self.reference_trials[trial_id] = label
        return {"status": "RUNNING", "values": dict(values)}

    def get_state(self):
        state = super().get_state()
        state["keras_reg_reference_trials"] = dict(getattr(self, "reference_trials", {}))
        return state

    def set_state(self, state):
        super().set_state(state)
        self.reference_trials = dict(state.get("keras_reg_reference_trials", {}))


ORACLES = {
    name: type(f"ReferencesFirst{cls.__name__}", (_ReferencesFirst, cls), {})
    for name, cls in (("hyperband", keras_tuner.oracles.HyperbandOracle),
                      ("bayesian", keras_tuner.oracles.BayesianOptimizationOracle),
                      ("random", keras_tuner.oracles.RandomSearchOracle))
}
