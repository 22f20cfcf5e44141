"""Smoke tests of the examples: each runs as a script, in its quick mode, into tmp_path.

pytest turns warnings into errors, so these also check that the examples are
warning-clean. The quality thresholds leave a margin below what quick mode reaches
(best CV accuracy 0.90 on digits, test accuracy 0.82 on the generated text).
"""
import scipy.sparse as sp


def test_grid_search_activations_example(run_example, tmp_path, capsys):
    ns = run_example("plot_grid_search_activations.py")
    assert (tmp_path / "grid_search_activations.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| activation | alpha | CV accuracy (mean ± std) | mean fit time (s) |" in printed
    for activation in ns["activations"]:
        assert f"| {activation} |" in printed
    assert "best params:" in printed
    assert "test accuracy of the refitted best pipeline:" in printed

    search = ns["search"]
    assert set(search.best_params_) == {"relumlpclassifier__activation",
                                        "relumlpclassifier__alpha"}
    assert search.best_score_ > 0.85
    assert search.score(ns["X_test"], ns["y_test"]) > 0.85


def test_sparse_text_example(run_example, tmp_path, capsys):
    ns = run_example("sparse_text.py")
    assert (tmp_path / "sparse_text_confusion.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "TF-IDF training matrix: csr_matrix" in printed
    assert "| model | hidden units | epochs | pipeline fit time (s) | test accuracy |" in printed
    assert "| ReLUMLPClassifier |" in printed and "| MLPClassifier |" in printed
    assert "confusion matrix" in printed

    assert sp.issparse(ns["X_train"]) and ns["X_train"].format == "csr"
    accuracies = {name: accuracy for name, (_, accuracy, _) in ns["results"].items()}
    assert accuracies["ReLUMLPClassifier"] > 0.7
    assert accuracies["MLPClassifier"] > 0.7
    assert ns["cm"].sum() == len(ns["y_test"])


def test_quickstart_runs_and_matches_sklearn_by_default(run_example, capsys):
    """The README's main command runs examples/quickstart.py: relumlp's default model is
    scikit-learn's, so it reaches scikit-learn's test accuracy exactly."""
    run_example("quickstart.py", output=False)
    lines = capsys.readouterr().out.splitlines()
    rows = {line[:28].strip(): line.split()[-2:] for line in lines
            if line.startswith(("relumlp.", "  weight_init", "sklearn MLP"))}
    assert set(rows) == {"relumlp.ReLUMLPClassifier", "weight_init='he_uniform'",
                         "sklearn MLPClassifier"}
    accuracy = {name: float(values[1]) for name, values in rows.items()}
    assert accuracy["relumlp.ReLUMLPClassifier"] == accuracy["sklearn MLPClassifier"]
    assert min(accuracy.values()) > 0.93
