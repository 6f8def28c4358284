"""Tests of costroute.evaluation, one file per module of the package."""
