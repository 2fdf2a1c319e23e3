"""The posterior-collapse watch: code_spread against numpy, CollapseMonitor's warnings and stop, train_lib's use."""

import json
import logging

import helpers
import numpy as np
import pytest

from tf_avae import data, train_lib
from tf_avae.evaluation import CollapseMonitor, code_spread


def _smoke_config(name="vae_color_mnist"):
    return helpers.load_config(name, "smoke")


def _numpy_spread(model, images):
    """Per-dimension RMS spread of the encoder's means, from the encoder's own outputs."""
    mean, _ = model.encoder(images, training=False)
    return float(np.sqrt(np.var(np.asarray(mean), axis=0).mean()))


def _constant_encoder(model):
    for variable in model.encoder.weights:  # every weight 0: mu(x) = 0 for every x
        variable.assign(np.zeros(variable.shape, np.float32))
    return model


def test_code_spread_is_the_rms_spread_of_the_encoder_means():
    model = helpers.make_model("VAE", latent_dim=6)
    images = helpers.images(40)
    expected = _numpy_spread(model, images)
    assert expected > 0
    assert code_spread(model, images, batch_size=16, per_dimension=True) == pytest.approx(expected, rel=1e-5)
    assert code_spread(model, images, batch_size=16) == pytest.approx(expected * np.sqrt(6), rel=1e-5)


def _monitor_on(model, **kwargs):
    monitor = CollapseMonitor(helpers.images(32, seed=1), **kwargs)
    monitor.set_model(model)
    model.stop_training = False  # as `fit` sets it
    monitor.on_train_begin()
    return monitor


def test_a_constant_encoder_is_reported_and_stopped_after_patience_epochs(caplog):
    model = _constant_encoder(helpers.make_model("VAE"))
    monitor = _monitor_on(model, patience=2)
    logs = {}
    with caplog.at_level(logging.WARNING):
        monitor.on_epoch_end(0, logs)
    assert logs["code_spread"] == 0.0
    assert "posterior collapse" in caplog.text and "Epoch 1" in caplog.text
    assert not model.stop_training and monitor.stopped_at_epoch is None
    monitor.on_epoch_end(1, logs)
    assert model.stop_training and monitor.stopped_at_epoch == 1 and monitor.collapsed_epochs == 2


def test_a_working_encoder_is_not_reported_and_resets_the_count(caplog):
    model = helpers.make_model("VAE")
    monitor = _monitor_on(model, threshold=1e-3, patience=2)
    monitor.collapsed_epochs = 1  # as after one collapsed epoch
    logs = {}
    with caplog.at_level(logging.WARNING):
        monitor.on_epoch_end(0, logs)
    assert logs["code_spread"] == pytest.approx(_numpy_spread(model, monitor.images), rel=1e-5)
    assert logs["code_spread"] > 1e-3
    assert "collapse" not in caplog.text
    assert monitor.collapsed_epochs == 0 and not model.stop_training


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0.0}, "threshold"),
    ({"patience": 0}, "patience"),
])
def test_monitor_rejects_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CollapseMonitor(helpers.images(4), **kwargs)
    with pytest.raises(ValueError, match="images"):
        CollapseMonitor(helpers.images(4) + 2.0)  # outside [0, 1]


def test_training_logs_the_spread_of_the_saved_model_every_epoch(tmp_path):
    config = _smoke_config()
    train_lib.train(config, tmp_path)
    spreads = json.loads((tmp_path / train_lib.HISTORY_FILE).read_text())["history"]["code_spread"]
    assert len(spreads) == 2  # one per epoch
    images, _ = data.load_arrays(config.data.name, config.data.eval_split, limit=train_lib.COLLAPSE_EXAMPLES,
                                 seed=config.seed)
    reloaded = train_lib.load_model(tmp_path)
    assert spreads[-1] == pytest.approx(_numpy_spread(reloaded, images), rel=1e-4)


def test_patience_stops_a_collapsed_run_keeps_its_checkpoints_and_a_watch_change_resumes_it(tmp_path):
    config = _smoke_config()
    config.train.collapse_threshold = 1e9  # every encoder counts as collapsed
    config.train.collapse_patience = 1
    with pytest.raises(train_lib.TrainingCollapsedError, match="collapse_patience=1"):
        train_lib.train(config, tmp_path)
    assert not (tmp_path / train_lib.MODEL_FILE).exists()
    assert list((tmp_path / train_lib.CHECKPOINT_DIR).iterdir())
    config.train.collapse_threshold = None  # a watch-only setting: the same run, resumed
    config.train.collapse_patience = None
    model = train_lib.train(config, tmp_path, resume=True)
    assert int(model.optimizer.iterations.numpy()) == config.train.num_steps
    history = json.loads((tmp_path / train_lib.HISTORY_FILE).read_text())
    assert history["resumed_from_step"] == config.train.steps_per_epoch
    assert len(history["history"]["loss"]) == 2 and len(history["history"]["code_spread"]) == 1  # off when resumed


@pytest.mark.parametrize("key, value", [("collapse_threshold", -1.0), ("collapse_patience", 0)])
def test_bad_collapse_settings_fail_before_training_by_name(tmp_path, key, value):
    config = _smoke_config()
    config.train[key] = value
    with pytest.raises(ValueError, match=f"train.{key}"):
        train_lib.train(config, tmp_path)
    assert not list(tmp_path.iterdir())


def test_keras_fit_with_the_monitor_records_it_in_the_history():
    model = helpers.compiled(_constant_encoder(helpers.make_model("VAE")), learning_rate=0.0)
    x = helpers.images(16)
    history = model.fit(x, epochs=2, batch_size=8, verbose=0, callbacks=[CollapseMonitor(x, patience=1)])
    assert history.history["code_spread"] == [0.0]  # stopped after the first epoch


def test_an_experiments_base_train_settings_carry_the_watch_to_every_run(tmp_path):
    from tf_avae import reproduce_lib

    config = _smoke_config("reproduce_color_mnist")
    config.base.train.collapse_patience = 3
    runs = reproduce_lib.build_run_configs(config, tmp_path)
    assert {c.train.collapse_patience for c in runs.values()} == {3}
    assert {c.train.collapse_threshold for c in runs.values()} == {train_lib.base_config().train.collapse_threshold}
