# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The demo marketing scenario, scripted with proteus

This is how a marketer or an integrator sets up a campaign from a script
instead of the client. It works the same against any database that has
``marketing_automation`` activated: connect proteus to it, then call
``create_scenario()``. For the demo database::

    .venv/bin/python -m demo.scenario     # adds one more copy of the scenario

The campaign "Spring collection" goes to every party that has an e-mail
address:

* "Welcome" (the root activity) sends the announcement at once, in the
  language of the party (English or French);
* "Reminder" sends it again 3 days later to those who did not open it;
* "Follow-up" thanks those who clicked one of its links with a discount.
"""
import datetime as dt
import importlib.util

from proteus import Model
from trytond.pyson import PYSONEncoder

# The e-mail title is a Genshi text template, the body a Genshi HTML
# template; both get the record of the scenario (here a party) as `record`.
# Every link is tracked (clicks), `href="unsubscribe"` becomes the link that
# takes the recipient out of the scenario, and an invisible image is added
# to know whether the e-mail was opened.
WELCOME_TITLE = {
    'en': "${record.name}, discover our spring collection",
    'fr': "${record.name}, découvrez notre collection de printemps",
    }
WELCOME_TEMPLATE = {
    'en': """\
<html xmlns:py="http://genshi.edgewall.org/">
  <body>
    <p>Hello ${record.name},</p>
    <p>Our spring collection has arrived: light fabrics and bright colours.</p>
    <p><a href="https://shop.example.com/spring">See the collection</a>
      or <a href="https://shop.example.com/stores">find a store</a>.</p>
    <p><small>You do not want our news any more?
      <a href="unsubscribe">Unsubscribe</a></small></p>
  </body>
</html>
""",
    'fr': """\
<html xmlns:py="http://genshi.edgewall.org/">
  <body>
    <p>Bonjour ${record.name},</p>
    <p>Notre collection de printemps est arrivée : tissus légers et couleurs
      vives.</p>
    <p><a href="https://shop.example.com/fr/printemps">Voir la collection</a>
      ou <a href="https://shop.example.com/fr/magasins">trouver un
      magasin</a>.</p>
    <p><small>Vous ne souhaitez plus recevoir nos nouvelles ?
      <a href="unsubscribe">Se désinscrire</a></small></p>
  </body>
</html>
""",
    }
REMINDER_TITLE = {
    'en': "${record.name}, did you see our spring collection?",
    'fr': "${record.name}, avez-vous vu notre collection de printemps ?",
    }
REMINDER_TEMPLATE = {
    'en': """\
<html>
  <body>
    <p>Hello ${record.name},</p>
    <p>In case you missed it: our spring collection is in the shops.</p>
    <p><a href="https://shop.example.com/spring">See the collection</a></p>
    <p><small><a href="unsubscribe">Unsubscribe</a></small></p>
  </body>
</html>
""",
    'fr': """\
<html>
  <body>
    <p>Bonjour ${record.name},</p>
    <p>Au cas où vous l'auriez manquée : notre collection de printemps est
      en magasin.</p>
    <p><a href="https://shop.example.com/fr/printemps">Voir la
      collection</a></p>
    <p><small><a href="unsubscribe">Se désinscrire</a></small></p>
  </body>
</html>
""",
    }
FOLLOW_UP_TITLE = {
    'en': "Thank you for your visit, ${record.name}",
    'fr': "Merci de votre visite, ${record.name}",
    }
FOLLOW_UP_TEMPLATE = {
    'en': """\
<html>
  <body>
    <p>Hello ${record.name},</p>
    <p>Thank you for having a look at our spring collection.
      Here is 10% off your next purchase: SPRING10.</p>
    <p><a href="https://shop.example.com/spring?code=SPRING10">Shop now</a></p>
    <p><small><a href="unsubscribe">Unsubscribe</a></small></p>
  </body>
</html>
""",
    'fr': """\
<html>
  <body>
    <p>Bonjour ${record.name},</p>
    <p>Merci d'avoir regardé notre collection de printemps.
      Voici 10 % de réduction sur votre prochain achat : SPRING10.</p>
    <p><a href="https://shop.example.com/fr/printemps?code=SPRING10">J'en
      profite</a></p>
    <p><small><a href="unsubscribe">Se désinscrire</a></small></p>
  </body>
</html>
""",
    }

# With mrml installed, "Follow-up" is written in MJML: the server converts it
# to responsive HTML after the render of its expressions
FOLLOW_UP_MJML = {
    'en': """\
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text font-size="16px">Hello ${record.name},</mj-text>
        <mj-text>Thank you for having a look at our spring collection.
          Here is 10% off your next purchase: SPRING10.</mj-text>
        <mj-button href="https://shop.example.com/spring?code=SPRING10">
          Shop now</mj-button>
        <mj-text font-size="11px"><a href="unsubscribe">Unsubscribe</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
""",
    'fr': """\
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text font-size="16px">Bonjour ${record.name},</mj-text>
        <mj-text>Merci d'avoir regardé notre collection de printemps.
          Voici 10 % de réduction sur votre prochain achat : SPRING10.
        </mj-text>
        <mj-button
            href="https://shop.example.com/fr/printemps?code=SPRING10">
          J'en profite</mj-button>
        <mj-text font-size="11px"><a href="unsubscribe">Se désinscrire</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
""",
    }
if importlib.util.find_spec('mrml'):
    FOLLOW_UP_TEMPLATE = FOLLOW_UP_MJML


def create_scenario(config):
    "Create the scenario with its activities, run it and return it"
    Scenario = Model.get('marketing.automation.scenario')
    Activity = Model.get('marketing.automation.activity')

    # The scenario: which records enter it. The domain is a PYSON-encoded
    # domain on the model, here the parties that have an e-mail address.
    scenario = Scenario(name="Spring collection")
    scenario.model = 'party.party'
    scenario.domain = PYSONEncoder().encode([
            ('contact_mechanisms.type', '=', 'email'),
            ])
    # Unsubscribing blocks the party in this scenario for good.
    scenario.unsubscribable = True

    # The root activity runs as soon as a party enters the scenario.
    welcome = scenario.activities.new(name="Welcome")
    welcome.action = 'send_email'
    welcome.email_title = WELCOME_TITLE['en']
    welcome.email_template = WELCOME_TEMPLATE['en']
    scenario.save()
    welcome, = scenario.activities

    # Its children react to the e-mail it sent.
    # "Reminder" runs 3 days later unless the e-mail was opened by then.
    reminder = welcome.children.new(name="Reminder")
    reminder.on = 'email_opened_not'
    reminder.delay = dt.timedelta(days=3)
    reminder.action = 'send_email'
    reminder.email_title = REMINDER_TITLE['en']
    reminder.email_template = REMINDER_TEMPLATE['en']
    # "Follow-up" runs as soon as a link of the e-mail is clicked.
    follow_up = welcome.children.new(name="Follow-up")
    follow_up.on = 'email_clicked'
    follow_up.action = 'send_email'
    follow_up.email_title = FOLLOW_UP_TITLE['en']
    follow_up.email_template = FOLLOW_UP_TEMPLATE['en']
    welcome.save()
    children = {a.name: a for a in welcome.children}
    reminder, follow_up = children["Reminder"], children["Follow-up"]

    # The texts are translatable: read the records again in French, set the
    # French texts and save. The parties whose language is French get them.
    with config.set_context(language='fr'):
        scenario = Scenario(scenario.id)
        scenario.name = "Collection de printemps"
        scenario.save()
        for activity, name, title, template in [
                (welcome, "Bienvenue", WELCOME_TITLE, WELCOME_TEMPLATE),
                (reminder, "Relance", REMINDER_TITLE, REMINDER_TEMPLATE),
                (follow_up, "Suivi", FOLLOW_UP_TITLE, FOLLOW_UP_TEMPLATE),
                ]:
            activity = Activity(activity.id)
            activity.name = name
            activity.email_title = title['fr']
            activity.email_template = template['fr']
            activity.save()

    # Run it: from now on, the scheduled tasks "Trigger Marketing Scenarios"
    # and "Process Marketing Activity" (trytond-cron) make the parties enter
    # it and send the e-mails.
    scenario = Scenario(scenario.id)
    scenario.click('run')
    return scenario


def main():
    from .database import connect
    scenario = create_scenario(connect())
    print("Scenario %r (id %s) is %s" % (
            scenario.name, scenario.id, scenario.state))


if __name__ == '__main__':
    main()
