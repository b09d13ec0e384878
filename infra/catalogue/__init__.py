"""Classify a whole catalogue of posters with Apache Beam: the function's artifact, decoder and
limits (the ``postergenre`` package) run in a batch pipeline, locally or on Dataflow.

``python -m infra.catalogue --input 'posters/**' --output out/`` (see README.md). This package
imports ``postergenre``; the function never imports this package.
"""
