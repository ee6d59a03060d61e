"""genlab's scikit-learn face on the digits: model selection, classification, imputation.

    python examples/sklearn_pipeline.py              # prints three small tables
    python examples/sklearn_pipeline.py --missing 0.5

Every genlab family is a scikit-learn estimator (`genlab.Estimator("gmm", n_components=4)` is a
`genlab.estimators.GMM`): ``fit``, ``score_samples`` (log p(x) per row, nats), ``score`` (their
mean: higher is better), ``sample``, so `GridSearchCV`, `Pipeline` and `clone` work unchanged.
Three uses, each beside a plain scikit-learn baseline:

1. `GridSearchCV` chooses a mixture's number of components by cross-validated log-likelihood.
2. `GenerativeClassifier`: one density per class and Bayes' rule, tuned by `GridSearchCV` like
   any classifier, against `LogisticRegression`.
3. `GenerativeImputer` as the first step of a `Pipeline`: test images with missing pixels are
   filled from p(missing | observed) before a classifier sees them, against mean imputation.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import genlab
from genlab.estimators import GenerativeClassifier, GenerativeImputer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("examples-out/sklearn_pipeline"),
                   help="folder for results.txt (the tables printed)")
    p.add_argument("--missing", type=float, default=0.3, help="share of test pixels removed in part 3")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text)
        lines.append(text)

    X, y = load_digits(return_X_y=True)  # 1,797 images of 8x8 grey levels 0..16
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=args.seed)

    # 1. model selection: Estimator.score is the mean log-likelihood, what GridSearchCV maximises
    search = GridSearchCV(genlab.Estimator("gmm", seed=args.seed), {"n_components": [1, 2, 4, 8]}, cv=3)
    search.fit(X_train)
    say("1. GridSearchCV over genlab.Estimator('gmm'): mean held-out log p(x), nats per image")
    for k, mean in zip(search.cv_results_["param_n_components"], search.cv_results_["mean_test_score"]):
        say(f"   n_components={k:<3}{mean:>10.1f}")
    best = search.best_estimator_
    say(f"   chosen: {search.best_params_}; on the test images {best.score(X_test):.1f} nats per image")
    # the chosen model is a generator too (a seed for repeatable draws)
    new = best.sample(5, random_state=args.seed)
    say(f"   5 new images drawn: shape {tuple(new.shape)}, grey levels {new.min():.0f}..{new.max():.0f}")

    # 2. classification: Bayes' rule on p(x | y), one gmm per digit (about 135 training images for
    # 64 pixels each), chosen by cross-validated accuracy. `reg` (added to each covariance's
    # diagonal) matters here: a pixel that is almost constant within a component gets a very
    # narrow Gaussian unless regularised, and a test image that differs there is ruled out.
    grid = {"n_components": [1, 2], "reg": [1e-6, 0.1]}
    search = GridSearchCV(GenerativeClassifier("gmm", seed=args.seed), grid, cv=3).fit(X_train, y_train)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    say("\n2. GridSearchCV over GenerativeClassifier('gmm'): cross-validated accuracy")
    for params, mean in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        say(f"   n_components={params['n_components']}, reg={params['reg']:<8g}{mean:>8.3f}")
    say(f"   chosen: {search.best_params_}; test accuracy {search.score(X_test, y_test):.3f}, "
        f"LogisticRegression {logistic.score(X_test, y_test):.3f}")

    # 3. imputation inside a Pipeline: fitted on complete training images, applied to test images
    # with a share of their pixels missing (NaN), as when a sensor fails after deployment
    rng = np.random.default_rng(args.seed)
    holes = rng.random(X_test.shape) < args.missing
    X_holes = np.where(holes, np.nan, X_test)
    say(f"\n3. {args.missing:.0%} of the test pixels missing: imputation error and accuracy behind it")
    say(f"   {'imputer':<34}{'RMSE (grey levels)':>19}{'accuracy':>10}")
    for name, imputer in [("GenerativeImputer('gmm')", GenerativeImputer("gmm", n_components=4, seed=args.seed)),
                          ("SimpleImputer(strategy='mean')", SimpleImputer(strategy="mean"))]:
        pipe = make_pipeline(imputer, StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
        filled = pipe[0].transform(X_holes)  # the fitted first step alone
        rmse = float(np.sqrt(np.mean((filled[holes] - X_test[holes]) ** 2)))
        say(f"   {name:<34}{rmse:>19.2f}{pipe.score(X_holes, y_test):>10.3f}")

    (args.out / "results.txt").write_text("\n".join(lines) + "\n")
    print(f"\nresults: {args.out / 'results.txt'}")


if __name__ == "__main__":
    main()
