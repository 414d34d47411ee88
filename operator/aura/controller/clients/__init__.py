"""Adapters for every external API, each behind a Protocol listing only the calls we make."""
