"""The conventional baseline: an SVM on per-block MFCC statistics (``model=mfcc_svm``).

It sees exactly the blocks, folds, training noise and fixed noisy test sets the deep model
sees, and writes the same run-directory files, so a sweep reports both side by side.
"""
