"""Inference beyond the analytic clustered variance: few-cluster and sensitivity methods.

Modules here take what an estimator already computed (design matrices, residuals, influence
functions or an event study with its covariance) and return tests, intervals and reference
distributions; the estimators expose them through their ``se`` option.
"""
