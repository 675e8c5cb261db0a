"""The conventional baselines: an SVM on per-block features, trained by train.py like a network.

``model=mfcc_svm`` (MFCC statistics, :mod:`ser.baseline.svm`) and ``model=opensmile_svm``
(openSMILE's eGeMAPS or ComParE functionals, the field's standard, :mod:`ser.baseline.opensmile_svm`)
see exactly the blocks, folds, training noise and fixed noisy test sets the deep model sees, and
write the same run-directory files (metrics.json, run.json, predictions.csv ...), so a sweep
reports them side by side. Shared parts: the SVM, its settings chosen on validation and its
probabilities (:mod:`ser.baseline.estimator`); mixing and the on-disk feature cache
(:mod:`ser.baseline.extraction`); the run itself (:mod:`ser.baseline.run`).
"""
