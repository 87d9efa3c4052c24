"""The yardstick: a Flask app with one route returning a fixed string, nothing else."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def fixed_string() -> str:
    return "Global Updates bench: a fixed string."
