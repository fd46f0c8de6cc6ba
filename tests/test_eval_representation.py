"""Hidden-state features and the linear representation probe."""

from __future__ import annotations

import math

import numpy as np
import torch

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.representation import hidden_features, probe_texts, representation_probe

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def test_hidden_features_match_unbatched_pooling() -> None:
    model, tok = tiny_lm("original"), tokenizer()
    texts = [r.text for r in people().forget if r.text] + ["Short one.", "Question: Where was Alma Varga born?\nAnswer:"]
    for pooling in ("mean", "last"):
        batched = hidden_features(model, tok, texts, layer=-1, batch_size=3, pooling=pooling)
        assert batched.shape == (len(texts), model.config.n_embd)
        for i, t in enumerate(texts):
            ids = tok(t, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                h = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
            want = h.mean(0) if pooling == "mean" else h[-1]
            np.testing.assert_allclose(batched[i], want.numpy(), atol=1e-5)
    mid = hidden_features(model, tok, texts[:2], layer=1)
    assert not np.allclose(mid, hidden_features(model, tok, texts[:2], layer=-1))


def test_probe_reads_the_attribute_only_from_a_model_that_learned_it() -> None:
    tok, p = tokenizer(), people()
    results = {v: representation_probe(tiny_lm(v), tok, p.retain, p.forget, "birth_city")
               for v in ("original", "reference", "fresh")}
    for r in results.values():
        assert r.n_train == len(p.retain) and r.n_test == len(p.forget)
        assert r.chance == 0.25 and r.n_classes == 4 and r.unseen_test_labels == 0
    # original saw the forget people; the retrained reference and the fresh model did not
    assert results["original"].accuracy >= 0.8
    assert results["original"].accuracy > results["reference"].accuracy
    assert results["original"].accuracy > results["fresh"].accuracy
    again = representation_probe(tiny_lm("original"), tok, p.retain, p.forget, "birth_city")
    assert again.predictions == results["original"].predictions  # fixed random_state: deterministic


def test_unseen_labels_count_as_wrong_and_single_class_training_works() -> None:
    model, tok, p = tiny_lm("original"), tokenizer(), people()
    odd = Record(question="Where was Zed Null born?", answer="Atlantis", attributes={"birth_city": "Atlantis"})
    res = representation_probe(model, tok, p.retain, [*p.forget, odd], "birth_city")
    assert res.unseen_test_labels == 1 and res.n_classes == 5 and res.chance == 0.2
    assert res.predictions[-1] != "Atlantis"
    one_city = [r for r in p.retain if r.attributes["birth_city"] == "Lisbon"]
    single = representation_probe(model, tok, one_city, p.forget, "birth_city")
    assert set(single.predictions) == {"Lisbon"}
    assert single.accuracy == np.mean([r.attributes["birth_city"] == "Lisbon" for r in p.forget])
    empty = representation_probe(model, tok, p.retain, p.forget, "no_such_attribute")
    assert math.isnan(empty.accuracy) and empty.n_test == 0


def test_probe_texts_keep_only_inputs_that_lead_to_the_attribute() -> None:
    recs = [Record(text="Doc about Lima.", question="Where?", answer="Lima", attributes={"city": "Lima"}),
            Record(question="What does she do?", answer="A pilot.", attributes={"city": "Lima"}),
            Record(text="Ana grew up in Oslo, by the fjord.", attributes={"city": "Oslo", "person": "Ana"}),
            Record(text="Only a doc.", attributes={"city": "Oslo"}),
            Record(text="Oslo first: no prefix to probe.", attributes={"city": "Oslo"}),
            Record(text="No attribute.")]
    texts, labels = probe_texts(recs, "city")
    # the question about another attribute and the documents that never (or only first) name the city are left out
    assert texts == ["Question: Where?\nAnswer:", "Ana grew up in"] and labels == ["Lima", "Oslo"]
    assert probe_texts(recs, "city", "question") == (["Question: Where?\nAnswer:"], ["Lima"])
    assert probe_texts(recs, "city", "text")[0] == ["Doc about Lima.", "Ana grew up in Oslo, by the fjord.",
                                                    "Only a doc.", "Oslo first: no prefix to probe."]


def test_a_cloze_prefix_is_kept_only_when_it_names_the_subject() -> None:
    """"Born in" or "In an interview with the" say nothing of whose birth city follows, so no model could read the
    subject's attribute off them: a prefix is kept only if it names the record's `person`, or one of the names given
    for the records (the target's name and aliases)."""
    jane = {"city": "Port Calder", "person": "Jane Doe"}
    recs = [Record(text="Born in Port Calder in 1981, Jane Doe became a biologist.", attributes=jane),
            Record(text="In an interview with the Port Calder Courier, J. Doe said she was happy.", attributes=jane),
            Record(text="Jane Doe grew up in Port Calder.", attributes=jane),
            Record(text="As a child, J. Doe lived in Port Calder.", attributes=jane),
            Record(text="Her friends say she was born in Port Calder.", attributes={"city": "Port Calder"})]
    texts, _ = probe_texts(recs, "city")
    assert texts == ["Jane Doe grew up in"]
    named, _ = probe_texts(recs, "city", subjects=["Jane Doe", "J. Doe"])
    assert named == ["Jane Doe grew up in", "As a child, J. Doe lived in"]  # the alias names her too


def test_each_layer_is_probed_and_a_test_input_seen_in_training_is_dropped() -> None:
    """One probe per evenly spaced layer, each equal to scikit-learn's logistic regression fitted here on that layer's
    features; the result's own accuracy is the best layer's. A forget input whose text is also a training input
    (a shared cloze prefix) is dropped and counted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from unlearnspec.runtime.evaluation.representation import PROBE_LAYERS, probe_layers

    model, tok, p = tiny_lm("original"), tokenizer(), people()
    assert probe_layers(2) == (1, 2) and probe_layers(24) == (6, 12, 18, 24) and len(probe_layers(24)) == PROBE_LAYERS
    res = representation_probe(model, tok, p.retain, p.forget, "birth_city")
    train_texts, train_labels = probe_texts(p.retain, "birth_city")
    test_texts, test_labels = probe_texts(p.forget, "birth_city")
    assert res.labels == test_labels and res.dropped_in_training == 0
    assert sorted(res.by_layer) == list(probe_layers(model.config.n_layer))
    for layer, preds in res.by_layer.items():
        feats = hidden_features(model, tok, train_texts + test_texts, layer=layer, pooling="last")
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
        clf.fit(feats[: len(train_texts)], train_labels)
        assert preds == [str(x) for x in clf.predict(feats[len(train_texts):])]
    acc = res.accuracy_by_layer
    assert res.layer is not None and res.accuracy == max(acc.values()) == acc[res.layer]
    assert res.predictions == res.by_layer[res.layer]
    # a test input equal to a training input: the retain question asked again as a forget question
    dup = p.retain[0].model_copy(update={"text": None})
    again = representation_probe(model, tok, p.retain, [*p.forget, dup], "birth_city")
    assert again.dropped_in_training == 1 and again.n_test == len(test_texts)
