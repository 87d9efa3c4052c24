"""The preferences form, built from the registry: one checkbox per optional category, and one
per service inside it (all sent under the one name ``services``)."""

from __future__ import annotations

import gettext as gnu_gettext
from functools import cache
from typing import Any

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, StringField
from wtforms.i18n import messages_path
from wtforms.validators import AnyOf, Length, Optional

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


class ServiceCheckboxes(Field):
    """The ticked services: each value a declared service's key, each at most once."""

    def __init__(self, *args: Any, keys: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys = keys
        self.data: frozenset[str] = frozenset()

    def process_formdata(self, valuelist: list[Any]) -> None:
        values = [str(value) for value in valuelist]
        unknown = sorted(set(values) - self.keys)
        if unknown:
            self.data = frozenset()
            raise ValueError(gettext("There is no service '%(key)s'.", key=unknown[0][:40]))
        if len(set(values)) != len(values):
            self.data = frozenset()
            raise ValueError(gettext("A service was sent more than once."))
        self.data = frozenset(values)


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
    # Sent by the consent script, which keeps every service box in step with its category's:
    # the ticked services are then exactly the services granted.
    exact_services = SingleValueField(
        validators=[Optional(), AnyOf(("1",), message=lazy_gettext("Unknown value."))]
    )
    next = SingleHiddenField(validators=[Length(max=2048)])

    def category_fields(self) -> list[CategoryCheckbox]:
        return [field for field in self if isinstance(field, CategoryCheckbox)]

    def checked_categories(self) -> frozenset[str]:
        return frozenset(field.name for field in self.category_fields() if field.data)

    def checked_services(self) -> frozenset[str]:
        field = self._fields.get("services")
        return field.data if isinstance(field, ServiceCheckboxes) else frozenset()

    def saved_choice(
        self, registry: Registry, granted_before: frozenset[str] = frozenset()
    ) -> tuple[frozenset[str], frozenset[str]]:
        """The categories and services a saved form grants.

        A ticked category grants the services of it that are ticked, or, when none of them
        is, all of them: without a script, the category's own box speaks for its services.
        A ticked service grants itself and its category (it cannot run outside it), unless
        the reader cleared that category's box where it was granted (``granted_before``):
        clearing it withdraws the category and every service of it, whatever service boxes
        stayed ticked. The consent script ticks and clears the service boxes with their
        category's and says so (``exact_services``): then the ticked services are exactly
        those granted.
        """
        ticked = self.checked_categories()
        cleared = granted_before - ticked
        services = frozenset(
            key for key in self.checked_services() if registry.service(key).category not in cleared
        )
        categories = ticked | {registry.service(key).category for key in services}
        granted = set(services)
        if self.exact_services.data == "1":
            return frozenset(categories), frozenset(granted)
        for key in categories:
            own = registry.services_in({key})
            if not own & services:
                granted |= own
        return frozenset(categories), frozenset(granted)


def preferences_form_class(registry: Registry) -> type[PreferencesForm]:
    fields: dict[str, Any] = {
        category.key: CategoryCheckbox(category.title) for category in registry.optional_categories
    }
    if registry.services:
        fields["services"] = ServiceCheckboxes(keys=registry.service_keys)
    return type("RegistryPreferencesForm", (PreferencesForm,), fields)
