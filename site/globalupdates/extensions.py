"""Extension instances, bound to an app in ``create_app``."""

from flask import request
from flask_babel import Babel
from flask_caching import Cache
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from flask_static_digest import FlaskStaticDigest
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
babel = Babel()
page_cache = Cache()
static_digest = FlaskStaticDigest()


def _remote_address() -> str:
    return request.remote_addr or "unknown"


# One prefix for the limiter, so that Flask-Limiter does not take the first app's
# RATELIMIT_KEY_PREFIX for every app of a process: the site's key functions carry each app's
# own (ratelimits.key_prefix).
limiter = Limiter(key_func=_remote_address, key_prefix="globalupdates")
