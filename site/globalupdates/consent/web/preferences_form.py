"""The preferences form, built from the registry: one checkbox per optional category."""

from __future__ import annotations

import gettext as gnu_gettext
from functools import cache
from typing import Any

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.i18n import messages_path
from wtforms.validators import AnyOf, Length

from ...i18n import reader_locale
from ..model.record_actions import FORM_ACTIONS
from ..model.registry import Registry

ACTIONS = FORM_ACTIONS
CHECKED_VALUES = frozenset({"y", "yes", "on", "1", "true"})


class CategoryCheckbox(BooleanField):
    """A checkbox that refuses any submitted value other than the ones a browser sends."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            self.data = False
            return
        if len(valuelist) > 1 or str(valuelist[0]).strip().lower() not in CHECKED_VALUES:
            self.data = False
            raise ValueError(gettext("A category accepts only a ticked checkbox (value 'on')."))
        self.data = True


class SingleValueField(StringField):
    """A field that a well-formed form sends at most once; a repeated value is refused."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if len(valuelist) > 1:
            raise ValueError(gettext("'%(name)s' was sent more than once.", name=self.name))
        super().process_formdata(valuelist)


class SingleHiddenField(SingleValueField, HiddenField):
    pass


@cache
def wtforms_messages(language: str) -> gnu_gettext.NullTranslations:
    """WTForms' own messages (a value too long, say) in one of the site's languages, read
    from WTForms' catalogue once per process. Flask-WTF reads the catalogue from disk again
    for every form, which cost more than the rest of the form together."""
    return gnu_gettext.translation("wtforms", messages_path(), [language], fallback=True)


class PreferencesForm(FlaskForm):
    """The choice, checked field by field. It carries no token: forgery protection comes from
    the request's Fetch Metadata (``globalupdates.forgery``), so the form is the same for
    every reader and needs no session before the choice."""

    class Meta:
        csrf = False

        def get_translations(self, form: Any) -> gnu_gettext.NullTranslations:
            return wtforms_messages(reader_locale())

    action = SingleValueField(validators=[AnyOf(ACTIONS, message=lazy_gettext("Unknown action."))])
    next = SingleHiddenField(validators=[Length(max=2048)])

    def category_fields(self) -> list[CategoryCheckbox]:
        return [field for field in self if isinstance(field, CategoryCheckbox)]

    def checked_categories(self) -> frozenset[str]:
        return frozenset(field.name for field in self.category_fields() if field.data)


def preferences_form_class(registry: Registry) -> type[PreferencesForm]:
    fields: dict[str, Any] = {
        category.key: CategoryCheckbox(category.title) for category in registry.optional_categories
    }
    return type("RegistryPreferencesForm", (PreferencesForm,), fields)
