"""The member pages' words in each locale the templates ship (templates/locales.py).

A locale falls back along templates' chain (fr-CA -> fr -> en), so a member reads the pages in the
language their messages came in. `{program}`, `{channel}` and `{support}` are filled in (escaped).
"""

from __future__ import annotations

from dataclasses import dataclass

from templates.locales import DEFAULT_LOCALE, fallback_chain


@dataclass(frozen=True, slots=True)
class PageText:
    locale: str
    channels: dict[str, str]
    """How each channel is named inside a sentence ("marketing {channel}")."""
    channel_labels: dict[str, str]
    """Each channel as a checkbox label."""
    unsubscribe_title: str
    unsubscribe_question: str
    unsubscribe_button: str
    choose_instead: str
    unsubscribed_title: str
    unsubscribed_body: str
    manage_all: str
    preferences_title: str
    preferences_intro: str
    save: str
    saved: str
    refused_title: str
    refused_hint: str
    support: str
    reasons: dict[str, str]
    """Why a link or form was refused, by reason code."""


CATALOG: dict[str, PageText] = {
    "en": PageText(
        locale="en",
        channels={"email": "emails", "sms": "text messages", "push": "app notifications"},
        channel_labels={"email": "Email", "sms": "Text messages (SMS)", "push": "App notifications"},
        unsubscribe_title="Unsubscribe from {program}",
        unsubscribe_question="Stop receiving marketing {channel} from {program}?",
        unsubscribe_button="Unsubscribe",
        choose_instead="Choose what you receive instead",
        unsubscribed_title="You are unsubscribed",
        unsubscribed_body="You will no longer receive marketing {channel} from {program}. "
                          "Messages about your account (such as points expiring) may still be sent.",
        manage_all="Manage all your preferences",
        preferences_title="Your {program} preferences",
        preferences_intro="Offers and news we may send you:",
        save="Save",
        saved="Your preferences are saved.",
        refused_title="This link cannot be used",
        refused_hint="Please use the latest link from one of our messages.",
        support="Questions? Write to {support}.",
        reasons={"expired": "This link has expired.", "invalid": "This link is not valid.",
                 "unconfigured": "Unsubscribe links are not configured here.",
                 "form": "This form was not sent from our page, or it has expired."},
    ),
    "fr": PageText(
        locale="fr",
        channels={"email": "e-mails", "sms": "SMS", "push": "notifications de l'application"},
        channel_labels={"email": "E-mail", "sms": "SMS", "push": "Notifications de l'application"},
        unsubscribe_title="Se désabonner de {program}",
        unsubscribe_question="Ne plus recevoir les {channel} publicitaires de {program} ?",
        unsubscribe_button="Se désabonner",
        choose_instead="Choisir plutôt ce que vous recevez",
        unsubscribed_title="Vous êtes désabonné",
        unsubscribed_body="Vous ne recevrez plus les {channel} publicitaires de {program}. "
                          "Les messages concernant votre compte (comme l'expiration de vos points) peuvent encore être envoyés.",
        manage_all="Gérer toutes vos préférences",
        preferences_title="Vos préférences {program}",
        preferences_intro="Offres et nouvelles que nous pouvons vous envoyer :",
        save="Enregistrer",
        saved="Vos préférences sont enregistrées.",
        refused_title="Ce lien ne peut pas être utilisé",
        refused_hint="Veuillez utiliser le lien le plus récent de l'un de nos messages.",
        support="Des questions ? Écrivez à {support}.",
        reasons={"expired": "Ce lien a expiré.", "invalid": "Ce lien n'est pas valide.",
                 "unconfigured": "Les liens de désabonnement ne sont pas configurés ici.",
                 "form": "Ce formulaire n'a pas été envoyé depuis notre page, ou il a expiré."},
    ),
    "de": PageText(
        locale="de",
        channels={"email": "E-Mails", "sms": "SMS", "push": "App-Benachrichtigungen"},
        channel_labels={"email": "E-Mail", "sms": "SMS", "push": "App-Benachrichtigungen"},
        unsubscribe_title="Von {program} abmelden",
        unsubscribe_question="Keine Werbe-{channel} mehr von {program} erhalten?",
        unsubscribe_button="Abmelden",
        choose_instead="Stattdessen auswählen, was Sie erhalten",
        unsubscribed_title="Sie sind abgemeldet",
        unsubscribed_body="Sie erhalten keine Werbe-{channel} mehr von {program}. "
                          "Nachrichten zu Ihrem Konto (etwa zu verfallenden Punkten) können weiterhin gesendet werden.",
        manage_all="Alle Einstellungen verwalten",
        preferences_title="Ihre Einstellungen bei {program}",
        preferences_intro="Angebote und Neuigkeiten, die wir Ihnen senden dürfen:",
        save="Speichern",
        saved="Ihre Einstellungen sind gespeichert.",
        refused_title="Dieser Link kann nicht verwendet werden",
        refused_hint="Bitte verwenden Sie den neuesten Link aus einer unserer Nachrichten.",
        support="Fragen? Schreiben Sie an {support}.",
        reasons={"expired": "Dieser Link ist abgelaufen.", "invalid": "Dieser Link ist ungültig.",
                 "unconfigured": "Abmeldelinks sind hier nicht eingerichtet.",
                 "form": "Dieses Formular wurde nicht von unserer Seite gesendet oder ist abgelaufen."},
    ),
    "es": PageText(
        locale="es",
        channels={"email": "correos", "sms": "SMS", "push": "notificaciones de la app"},
        channel_labels={"email": "Correo electrónico", "sms": "Mensajes de texto (SMS)", "push": "Notificaciones de la app"},
        unsubscribe_title="Darse de baja de {program}",
        unsubscribe_question="¿Dejar de recibir {channel} promocionales de {program}?",
        unsubscribe_button="Darse de baja",
        choose_instead="Elegir qué recibir en su lugar",
        unsubscribed_title="Se ha dado de baja",
        unsubscribed_body="Ya no recibirá {channel} promocionales de {program}. "
                          "Los mensajes sobre su cuenta (como puntos a punto de caducar) pueden seguir enviándose.",
        manage_all="Gestionar todas sus preferencias",
        preferences_title="Sus preferencias de {program}",
        preferences_intro="Ofertas y novedades que podemos enviarle:",
        save="Guardar",
        saved="Sus preferencias se han guardado.",
        refused_title="Este enlace no se puede usar",
        refused_hint="Use el enlace más reciente de uno de nuestros mensajes.",
        support="¿Preguntas? Escriba a {support}.",
        reasons={"expired": "Este enlace ha caducado.", "invalid": "Este enlace no es válido.",
                 "unconfigured": "Los enlaces de baja no están configurados aquí.",
                 "form": "Este formulario no se envió desde nuestra página o ha caducado."},
    ),
}


def page_text(locale: str | None) -> tuple[str, PageText]:
    """The HTML lang (the member's locale when we speak it, else the default) and the words."""
    for candidate in fallback_chain(locale, DEFAULT_LOCALE):
        base = candidate.split("-")[0]
        if candidate in CATALOG or (base in CATALOG and candidate.startswith(base)):
            text = CATALOG.get(candidate) or CATALOG[base]
            return (candidate if base in CATALOG else text.locale), text
    return DEFAULT_LOCALE, CATALOG[DEFAULT_LOCALE]


# --- survey and bulletin-read pages (channels/webhooks/survey_endpoints.py) ----------------------


@dataclass(frozen=True, slots=True)
class SurveyText:
    locale: str
    nps_question: str
    pulse_question: str
    low: str
    high: str
    thanks_title: str
    your_score: str
    """Filled with {score} and {max}."""
    change_hint: str
    comment_label: str
    comment_button: str
    comment_saved: str
    read_title: str
    read_body: str
    sms_thanks: str
    sms_out_of_range: str
    """Filled with {min} and {max}."""


SURVEY_CATALOG: dict[str, SurveyText] = {
    "en": SurveyText(
        locale="en",
        nps_question="How likely are you to recommend {program} to a friend?",
        pulse_question="How useful was this bulletin?",
        low="Not at all likely", high="Extremely likely",
        thanks_title="Thank you!",
        your_score="Your answer: {score} out of {max}.",
        change_hint="Changed your mind? Pick another score:",
        comment_label="Anything you would like to tell us? (optional)",
        comment_button="Send",
        comment_saved="Thank you, your comment is saved.",
        read_title="Thanks for reading",
        read_body="We have noted that you read this bulletin.",
        sms_thanks="Thank you for your answer!",
        sms_out_of_range="Please reply with a number from {min} to {max}.",
    ),
    "fr": SurveyText(
        locale="fr",
        nps_question="Quelle est la probabilité que vous recommandiez {program} à un ami ?",
        pulse_question="Ce bulletin vous a-t-il été utile ?",
        low="Pas du tout probable", high="Très probable",
        thanks_title="Merci !",
        your_score="Votre réponse : {score} sur {max}.",
        change_hint="Vous avez changé d'avis ? Choisissez une autre note :",
        comment_label="Souhaitez-vous nous dire quelque chose ? (facultatif)",
        comment_button="Envoyer",
        comment_saved="Merci, votre commentaire est enregistré.",
        read_title="Merci de votre lecture",
        read_body="Nous avons noté que vous avez lu ce bulletin.",
        sms_thanks="Merci pour votre réponse !",
        sms_out_of_range="Répondez par un nombre de {min} à {max}.",
    ),
    "de": SurveyText(
        locale="de",
        nps_question="Wie wahrscheinlich ist es, dass Sie {program} einem Freund empfehlen?",
        pulse_question="Wie nützlich war dieses Bulletin?",
        low="Sehr unwahrscheinlich", high="Sehr wahrscheinlich",
        thanks_title="Vielen Dank!",
        your_score="Ihre Antwort: {score} von {max}.",
        change_hint="Anders entschieden? Wählen Sie eine andere Bewertung:",
        comment_label="Möchten Sie uns noch etwas mitteilen? (optional)",
        comment_button="Senden",
        comment_saved="Danke, Ihr Kommentar ist gespeichert.",
        read_title="Danke fürs Lesen",
        read_body="Wir haben vermerkt, dass Sie dieses Bulletin gelesen haben.",
        sms_thanks="Vielen Dank für Ihre Antwort!",
        sms_out_of_range="Bitte antworten Sie mit einer Zahl von {min} bis {max}.",
    ),
    "es": SurveyText(
        locale="es",
        nps_question="¿Qué probabilidad hay de que recomiende {program} a un amigo?",
        pulse_question="¿Qué utilidad tuvo este boletín?",
        low="Nada probable", high="Muy probable",
        thanks_title="¡Gracias!",
        your_score="Su respuesta: {score} de {max}.",
        change_hint="¿Ha cambiado de opinión? Elija otra puntuación:",
        comment_label="¿Algo que quiera contarnos? (opcional)",
        comment_button="Enviar",
        comment_saved="Gracias, su comentario se ha guardado.",
        read_title="Gracias por leer",
        read_body="Hemos registrado que ha leído este boletín.",
        sms_thanks="¡Gracias por su respuesta!",
        sms_out_of_range="Responda con un número del {min} al {max}.",
    ),
}


def survey_text(locale: str | None) -> SurveyText:
    """The survey pages' words in the recipient's language (same fallback as `page_text`)."""
    for candidate in fallback_chain(locale, DEFAULT_LOCALE):
        base = candidate.split("-")[0]
        if candidate in SURVEY_CATALOG or base in SURVEY_CATALOG:
            return SURVEY_CATALOG.get(candidate) or SURVEY_CATALOG[base]
    return SURVEY_CATALOG[DEFAULT_LOCALE]
