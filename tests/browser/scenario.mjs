// This file is part of Tryton.  The COPYRIGHT file at the top level of
// this repository contains the full copyright notices and license terms.
//
// A marketing user's path through the Tryton web client (sao), driven in
// Debian's Chromium by tests/test_browser.py:
//   log in, cancel the module configuration wizard, open
//   Marketing › Scenarios, create a scenario on parties with a
//   "Send E-Mail" activity, save it, run it, then (once the test has run the
//   cron jobs) walk every view of the module: the records and record
//   activities (list, form, Failed tab), the activity tree of the prepared
//   scenario, its graph printed from the Print menu (downloaded as a
//   PNG), the Test E-Mail wizard (preview and error), each report (list
//   and graph, with its context) and the views of the e-mail archive and of
//   the party that the module extends. Any page error or console error of
//   sao fails the walk.
//
// Parameters come from the environment (see test_browser.py). Writes
// screenshots in SCREENSHOTS and the files that sao downloads in DOWNLOADS,
// prints "TRIGGER" on stdout and waits for a line on stdin before looking at
// the records, and prints "RESULT <json>" at the end. Exits non-zero on
// failure, with a screenshot "failure.png".
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

import { chromium } from 'playwright-core';

const env = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined) {
        throw new Error(`${name} is not set`);
    }
    return value;
};
const URL_ = env('URL');
const DATABASE = env('DATABASE');
const LOGIN = env('LOGIN');
const PASSWORD = env('PASSWORD');
const SCREENSHOTS = env('SCREENSHOTS');
// Where the files that sao downloads are saved
const DOWNLOADS = env('DOWNLOADS', path.join(SCREENSHOTS, 'downloads'));
const SCENARIO = env('SCENARIO_NAME');
const ACTIVITY = env('ACTIVITY_NAME');
const EMAIL_TITLE = env('EMAIL_TITLE');
const EMAIL_TEMPLATE = env('EMAIL_TEMPLATE');
const PARTIES = JSON.parse(env('PARTIES', '[]'));
const NEWSLETTER = env('NEWSLETTER_NAME');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TIMEOUT = Number(env('STEP_TIMEOUT', '20000'));

const PNG_SIGNATURE = Buffer.from([
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const log = (...args) => console.error('[browser]', ...args);

fs.mkdirSync(SCREENSHOTS, {recursive: true});
fs.mkdirSync(DOWNLOADS, {recursive: true});
const userDataDir = fs.mkdtempSync(
    path.join(process.env.TMPDIR || '/tmp', 'marketing-automation-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1366, height: 900},
    args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
        '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync',
    ],
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(TIMEOUT);
const pageErrors = [];
page.on('pageerror', error => {
    pageErrors.push(error.message);
    log('page error:', error.message);
});
// The errors that sao logs, but for the translations that sao 7.0 looks
// for and does not have for English, and the bus, off on the test server
const IGNORED_CONSOLE = [/\/locale\/en(_US)?\.json$/, /\/bus$/];
const consoleErrors = [];
page.on('console', message => {
    if (message.type() !== 'error') {
        return;
    }
    const {url} = message.location();
    if (IGNORED_CONSOLE.some(pattern => pattern.test(url || ''))) {
        return;
    }
    consoleErrors.push(`${message.text()} (${url})`);
    log('console error:', message.text(), url);
});
page.on('dialog', dialog => {
    log('unexpected dialog:', dialog.message());
    dialog.dismiss();
});

let shot = 0;
const screenshot = async (name, target = page) => {
    shot += 1;
    const file = path.join(
        SCREENSHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
    await target.screenshot({path: file});
    log('screenshot', file);
    return file;
};

// sao talks to trytond with jQuery.ajax: wait until no request is in flight,
// twice, to let the callbacks of the last one start the next one.
const idle = async () => {
    for (let i = 0; i < 2; i++) {
        await page.waitForFunction(
            () => window.jQuery && jQuery.active === 0);
        await page.waitForTimeout(150);
    }
};

const check = (condition, message) => {
    if (!condition) {
        throw new Error(message);
    }
};

// sao stores a typed value when the widget loses the focus
const typeIn = async (locator, value) => {
    await idle();
    await locator.click();
    await locator.fill(value);
    await locator.press('Tab');
    await idle();
    const stored = await locator.inputValue();
    check(stored === value,
        `typed ${JSON.stringify(value)} but the field shows ` +
        JSON.stringify(stored));
};

const activeTab = () => page.locator('#tabcontent > .tab-pane.active');
const tabTitle = () => page.locator('#tablist > li.active').innerText();
const waitTab = async (title) => {
    await page.locator('#tablist > li.active', {hasText: title}).waitFor();
    await activeTab().locator('.content-box').first().waitFor();
    await idle();
};

const menuRow = (title) => page.locator(
    '#menu tr', {has: page.locator(`div.column-char[title="${title}"]`)});

const one2many = (scope, string) => scope.locator('.form-one2many', {
    has: page.locator(
        ':scope > .form-one2many-menu label.form-one2many-string',
        {hasText: string}),
});

// The text of the rows of the list in the active tab
const rows = async () => {
    const body = activeTab().locator('table.tree > tbody').first();
    await body.waitFor({state: 'attached'});
    return (await body.locator('tr').allInnerTexts()).map(
        text => text.replace(/\s+/g, ' ').trim()).filter(Boolean);
};

const waitForStdinLine = async () => {
    const input = readline.createInterface({input: process.stdin});
    for await (const line of input) {
        input.close();
        return line;
    }
    return null;
};

const result = {pageErrors, consoleErrors};
try {
    // 1. Login: a dialog for the user name, then one for the password
    await page.goto(`${URL_}/#${DATABASE}`);
    const login = page.locator('.modal.in #login');
    await login.waitFor();
    await login.fill(LOGIN);
    await screenshot('login');
    await login.press('Enter');
    const password = page.locator('.modal.in input[type=password]');
    await password.waitFor();
    await password.fill(PASSWORD);
    await screenshot('password');
    await password.press('Enter');

    // 2. A new database opens the module configuration wizard: cancel it.
    // sao 7.0 shows the menu first, sao 8.0 only once the wizard is closed.
    const wizard = activeTab().locator('.tab-wizard');
    await menuRow('Marketing').or(wizard).first().waitFor();
    await idle();
    try {
        await wizard.waitFor({timeout: 5000});
    } catch (error) {
        log('no module configuration wizard');
    }
    if (await wizard.count()) {
        await screenshot('module-configuration');
        await wizard.locator('.modal-footer button[title=Cancel]').click();
        await idle();
        result.wizardCancelled = true;
    }
    await menuRow('Marketing').waitFor();

    // 3. Marketing › Scenarios
    await menuRow('Marketing').locator('.expander').click();
    await idle();
    await menuRow('Scenarios').locator('div.column-char').click();
    await waitTab('Scenarios');
    await screenshot('scenarios');

    // 4. A new scenario on parties
    let tab = activeTab();
    await tab.locator('button#new_').click();
    await tab.locator('input[name=name]').waitFor();
    await idle();  // the defaults redraw the new record
    await typeIn(tab.locator('input[name=name]'), SCENARIO);
    await tab.locator('select[name=model]').selectOption({label: 'Party'});
    await idle();
    result.domain = await tab.locator('input[name=domain]').inputValue();
    check(result.domain === '[]',
        `the domain is ${JSON.stringify(result.domain)}, not "[]"`);
    await screenshot('new-scenario');

    // 5. Its "Send E-Mail" activity, in the popup of Activities
    await one2many(tab, 'Activities')
        .locator('.form-one2many-toolbar button[title=New]').first().click();
    const popup = page.locator('.modal.in');
    await popup.locator('input[name=name]').waitFor();
    await idle();
    await typeIn(popup.locator('input[name=name]'), ACTIVITY);
    await popup.locator('select[name=action]').selectOption(
        {label: 'Send E-Mail'});
    await idle();
    await popup.locator('input[name=email_title]').waitFor(
        {state: 'visible'});
    await typeIn(popup.locator('input[name=email_title]'), EMAIL_TITLE);
    await typeIn(
        popup.locator('textarea[name=email_template]'), EMAIL_TEMPLATE);
    await screenshot('activity');
    await popup.locator('.modal-footer button[title=Add]').click();
    await popup.waitFor({state: 'hidden'});
    await idle();
    const activities = await one2many(tab, 'Activities')
        .locator('table.tree > tbody > tr').allInnerTexts();
    check(activities.some(text => text.includes(ACTIVITY)),
        `the activity is not in the list: ${JSON.stringify(activities)}`);

    // 6. Save
    await tab.locator('button#save').click();
    await idle();
    await page.locator('#tablist > li.active', {hasText: 'Scenarios'})
        .waitFor();
    const status = await tab.locator('.badge').first().innerText();
    check(!status.startsWith('_') && !status.startsWith('-'),
        `the scenario is not saved (${status})`);
    result.recordCount = await tab.locator('input[name=record_count]')
        .first().inputValue();
    await screenshot('saved');

    // 7. Run
    await tab.locator('button[name=run]').click();
    await idle();
    await tab.locator('button[name=stop]').waitFor({state: 'visible'});
    const state = tab.locator('select[name=state]');
    result.state = await state.evaluate(
        select => select.options[select.selectedIndex].text);
    check(result.state === 'Running', `the state is ${result.state}`);
    await screenshot('running');

    // 8. The test runs the cron jobs (the records enter both scenarios,
    // the e-mails go, Alice and Bob open them), then we walk every view
    console.log('TRIGGER');
    const answer = await waitForStdinLine();
    check(answer === 'CONTINUE', `the test answered ${answer}`);

    const relate = async (name) => {
        tab = activeTab();
        await tab.locator('button#relate').click();
        await tab.locator('ul[aria-labelledby=relate] a', {hasText: name})
            .first().click();
        await waitTab(name);
    };
    const reload = async () => {
        await activeTab().locator('button#reload').click();
        await idle();
    };
    const switchView = async () => {
        await activeTab().locator('button#switch_').click();
        await idle();
    };
    // Open the first row of the list of the active tab in its form
    const openForm = async () => {
        await activeTab().locator('table.tree > tbody > tr').first()
            .dblclick();
        await idle();
        await activeTab().locator('.form').first().waitFor();
    };
    // The menus expanded: sao keeps in the page only the rows of those
    const expanded = new Set(['Marketing', 'Marketing/Scenarios']);
    const closeTabs = async () => {
        while (await page.locator('#tablist > li button.close').count()) {
            await page.locator('#tablist > li button.close').first().click();
            await idle();
        }
    };
    // Open the menu entry of the path of titles in a new tab
    const openMenu = async (...titles) => {
        await closeTabs();
        for (const [i, title] of titles.slice(0, -1).entries()) {
            const path = titles.slice(0, i + 1).join('/');
            if (!expanded.has(path)) {
                // The entries come after the menus of the same name
                await menuRow(title).last().locator('.expander').click();
                await idle();
                expanded.add(path);
            }
        }
        await menuRow(titles.at(-1)).last().locator('div.column-char')
            .click();
        await waitTab(titles.at(-1));
    };

    await relate('Records');
    let records = await rows();
    result.records = records;
    await screenshot('records');
    for (const party of PARTIES) {
        check(records.some(text => text.includes(party)),
            `no record for ${party} in ${JSON.stringify(records)}`);
    }

    // Back to the scenario: its counters show the records
    await page.locator('#tablist > li', {hasText: 'Scenarios'}).first()
        .locator('a').click();
    await waitTab('Scenarios');
    await reload();
    result.recordCountAfterTrigger = await activeTab()
        .locator('input[name=record_count]').first().inputValue();
    await screenshot('scenario-after-trigger');

    await relate('Record Activities');
    records = await rows();
    result.recordActivities = records;
    await screenshot('record-activities');
    for (const party of PARTIES) {
        check(records.some(
            text => text.includes(party) && text.includes(ACTIVITY)),
            `no record activity for ${party} in ${JSON.stringify(records)}`);
    }

    // 9. The prepared newsletter: its activities are a tree, the
    // follow-up under the welcome e-mail
    await openMenu('Marketing', 'Scenarios');
    await activeTab().locator('.nav-tabs a', {hasText: 'All'}).click();
    await idle();
    await activeTab().locator('table.tree > tbody > tr',
        {hasText: NEWSLETTER}).first().dblclick();
    await idle();
    tab = activeTab();
    const activityTree = one2many(tab, 'Activities');
    const welcomeRow = activityTree.locator('table.tree > tbody > tr',
        {hasText: 'Welcome'}).first();
    await welcomeRow.locator('.expander').first().click();
    await idle();
    result.activityTree = (await activityTree
        .locator('table.tree > tbody > tr').allInnerTexts())
        .map(text => text.replace(/\s+/g, ' ').trim());
    await screenshot('activity-tree');
    check(result.activityTree.some(text => text.includes('Follow-up')),
        'the follow-up is not under the welcome e-mail: ' +
        JSON.stringify(result.activityTree));

    // Click the button of the footer of the dialog and wait for it to close
    const closeModal = async (dialog, button) => {
        const count = await page.locator('.modal.in').count();
        await dialog.locator('.modal-footer button', {hasText: button})
            .first().click();
        await page.waitForFunction(
            n => document.querySelectorAll('.modal.in').length < n, count);
        await idle();
    };

    // The goal of the scenario, then its simulation
    await tab.locator('.nav-tabs a', {hasText: 'Goal'}).first().click();
    await idle();
    await tab.locator('input[name=holdout_ratio]').first().waitFor();
    await screenshot('scenario-goal');
    await tab.locator('button[name=simulate]').click();
    await idle();
    const simulate = page.locator('.modal.in').last();
    // sao shows the number input of the field that has the focus and hides
    // its text input
    await simulate.locator('input[name=sample_size]:visible').first()
        .waitFor();
    await screenshot('simulate-start');
    await simulate.locator('.modal-footer button', {hasText: 'Simulate'})
        .first().click();
    await simulate.locator('input[name=record_count]').first().waitFor();
    await idle();
    result.simulate = {
        records: await simulate.locator('input[name=record_count]')
            .first().inputValue(),
        activities: (await one2many(simulate, 'Activities')
            .locator('table.tree > tbody > tr').allInnerTexts())
            .map(text => text.replace(/\s+/g, ' ').trim()),
    };
    await screenshot('simulate-result');
    await closeModal(simulate, 'Close');
    await tab.locator('.nav-tabs a', {hasText: 'Activities'}).first().click();
    await idle();

    // 9b. Print › Graph: sao fetches the report and hands the PNG of the
    // tree of activities with their figures to the browser as a download
    // (a link to a blob in its Download dialog, which it clicks itself)
    await tab.locator('button#print').click();
    const graphItem = tab.locator('ul[aria-labelledby=print] a',
        {hasText: 'Graph'}).first();
    await graphItem.waitFor();
    await screenshot('print-menu');
    const downloading = page.waitForEvent('download');
    await graphItem.click();
    const download = await downloading;
    const downloadFailure = await download.failure();
    check(!downloadFailure,
        `the download of the graph failed: ${downloadFailure}`);
    const graphName = download.suggestedFilename();
    const graphFile = path.join(DOWNLOADS, graphName);
    await download.saveAs(graphFile);
    // The dialog closes once its link is clicked
    await page.waitForFunction(
        () => !document.querySelector('.modal.in'));
    await idle();
    const graph = fs.readFileSync(graphFile);
    result.graph = {
        name: graphName,
        path: graphFile,
        size: graph.length,
        // The width and height of the image header (IHDR)
        width: graph.length >= 24 ? graph.readUInt32BE(16) : null,
        height: graph.length >= 24 ? graph.readUInt32BE(20) : null,
    };
    check(graph.subarray(0, 8).equals(PNG_SIGNATURE),
        `${graphName} is no PNG: it starts with ` +
        JSON.stringify(graph.subarray(0, 8).toString('latin1')));
    check(graph.length > 1000,
        `${graphName} has only ${graph.length} bytes`);
    // The file as the marketer opens it: Chromium decodes the image
    const viewer = await context.newPage();
    try {
        await viewer.setContent('<img style="display: block" src="' +
            `data:image/png;base64,${graph.toString('base64')}">`);
        result.graph.decoded = await viewer.locator('img').evaluate(
            img => img.decode().then(
                () => [img.naturalWidth, img.naturalHeight]));
        await screenshot('graph', viewer);
    } finally {
        await viewer.close();
        await page.bringToFront();
    }

    // 10. Test E-Mail of an activity for a party: the preview, then send
    const testEmail = async (form, recordName) => {
        await form.locator('button[name=test_email]').click();
        await idle();
        const wizard = page.locator('.modal.in').last();
        await wizard.locator('input[name=email]').waitFor();
        await wizard.locator('select').first().selectOption(
            {label: 'Party'});
        await idle();
        const record = wizard.locator('input[name=record]');
        await record.click();
        await record.fill(recordName);
        await page.locator('.dropdown-menu:visible a',
            {hasText: recordName}).first().click();
        await idle();
        return wizard;
    };
    // The popup of an activity of the scenario
    await activityTree.locator('table.tree > tbody > tr',
        {hasText: 'Welcome'}).first().dblclick();
    const activityPopup = page.locator('.modal.in').last();
    await activityPopup.locator('button[name=test_email]').waitFor();
    await idle();
    await screenshot('activity-popup');
    await closeModal(activityPopup, 'Discard');

    // The activities of the scenario, in their tree and their form, from
    // which the marketer tests the e-mail for Alice
    await relate('Activities');
    result.activities = await rows();
    const testEmailOf = async (activity, recordName) => {
        await activeTab().locator('table.tree > tbody > tr',
            {hasText: activity}).first().dblclick();
        await idle();
        await activeTab().locator('button[name=test_email]').waitFor();
        return testEmail(activeTab(), recordName);
    };
    let testWizard = await testEmailOf('Welcome', 'Alice Browser');
    result.testEmail = {
        subject: await testWizard.locator('input[name=subject]').inputValue(),
        email: await testWizard.locator('input[name=email]').inputValue(),
    };
    await screenshot('test-email-preview');
    await testWizard.locator('.nav-tabs a', {hasText: 'Text'}).click();
    result.testEmail.text = await testWizard.locator('textarea[name=text]')
        .inputValue();
    await screenshot('test-email-text');
    await closeModal(testWizard, 'Send');

    // and the error of a broken template, for Bob
    await page.waitForTimeout(500);
    await idle();
    await switchView();
    await activeTab().locator('table.tree > tbody > tr',
        {hasText: 'Broken'}).first().waitFor();
    testWizard = await testEmailOf('Broken', 'Bob Browser');
    await testWizard.locator('textarea[name=error]').waitFor();
    result.testEmailError = await testWizard.locator('textarea[name=error]')
        .inputValue();
    await screenshot('test-email-error');
    await closeModal(testWizard, 'Cancel');

    // 11. Marketing › Scenarios › Record Activities: the form with the
    // e-mail accesses and the Message-ID, the failed ones in their tab
    await openMenu('Marketing', 'Scenarios', 'Record Activities');
    const listTab = async (name) => {
        await activeTab().locator('.nav-tabs a', {hasText: name}).click();
        await idle();
    };
    await listTab('All');
    await activeTab().locator('table.tree > tbody > tr',
        {hasText: 'Welcome'}).first().dblclick();
    await idle();
    await activeTab().locator('.form').first().waitFor();
    result.recordActivityForm = {
        accesses: await activeTab()
            .locator('label', {hasText: 'E-Mail Accesses'}).count(),
        messageId: await activeTab()
            .locator('input[name=email_message_id]').inputValue(),
    };
    await screenshot('record-activity-form');
    check(result.recordActivityForm.accesses > 0,
        'the form of the record activity shows no e-mail accesses');
    await switchView();
    await listTab('Failed');
    result.failed = await rows();
    await screenshot('record-activities-failed');
    await openForm();
    result.failedError = await activeTab()
        .locator('textarea[name=error]').inputValue();

    // 12. Marketing › Scenarios › Records, in list and form
    await openMenu('Marketing', 'Scenarios', 'Records');
    records = await rows();
    result.recordsFromMenu = records;
    await screenshot('records-menu');
    for (const party of PARTIES) {
        check(records.some(text => text.includes(party)),
            `no record for ${party} in the menu: ${JSON.stringify(records)}`);
    }
    await openForm();
    await screenshot('record-form');

    // 12b. Marketing › Scenarios › Suppression List: the entries of the test
    // with their reason (shown in the All tab: the other tabs hide the
    // column of the reason that their domain fixes), the manual one stored in
    // lower case, and the form of the first one
    await openMenu('Marketing', 'Scenarios', 'Suppression List');
    await listTab('All');
    result.suppressions = await rows();
    await screenshot('suppression-list');
    await openForm();
    result.suppressionForm = {
        email: await activeTab().locator('input[name=email]').inputValue(),
        reason: await activeTab().locator('select[name=reason]').evaluate(
            select => select.options[select.selectedIndex].text),
    };
    await screenshot('suppression-form');

    // 13. Marketing › Reporting: each report in its list and its graph,
    // by day
    result.reports = {};
    for (const name of [
            'Scenario Totals', 'Activity Totals', 'Scenarios', 'Activities',
            'Clicks per Link']) {
        await openMenu('Marketing', 'Reporting', name);
        const period = activeTab().locator('select[name=period]');
        if (await period.count()) {
            await period.selectOption({label: 'Day'});
            await idle();
            await reload();
        }
        result.reports[name] = await rows();
        if (name == 'Clicks per Link') {
            await screenshot('report-clicks-per-link');
            continue;
        }
        await switchView();
        await activeTab().locator('.graph').first().waitFor();
        await screenshot('report-' + name.toLowerCase().replace(' ', '-'));
    }
    check(result.reports['Scenario Totals'].some(
            text => text.includes(SCENARIO)),
        'no total of the scenario: ' +
        JSON.stringify(result.reports['Scenario Totals']));

    // 14. Marketing › Configuration: the e-mail cap
    await openMenu('Marketing', 'Configuration', 'Configuration');
    // The visible input of the field: sao swaps it when it takes the focus
    await activeTab().locator('input[name=email_cap]:visible').first()
        .waitFor();
    result.configuration = await activeTab().locator('.form').first()
        .innerText();
    await screenshot('configuration');

    // 15. The views that the module extends: the archived e-mail and the
    // party
    await openMenu('Administration', 'Models', 'E-mails');
    await activeTab().locator('table.tree > tbody > tr',
        {hasText: 'Welcome Alice', hasNotText: '[Test]'}).first().dblclick();
    await idle();
    result.archivedEmail = {
        activity: await activeTab()
            .locator('input[name=marketing_automation_activity]')
            .inputValue(),
        messageId: await activeTab()
            .locator('input[name=marketing_automation_message_id]')
            .inputValue(),
    };
    await screenshot('archived-email');
    await openMenu('Parties', 'Parties');
    await activeTab().locator('table.tree > tbody > tr',
        {hasText: 'Alice Browser'}).first().dblclick();
    await idle();
    await activeTab().locator('.nav-tabs a',
        {hasText: 'Unsubscribed Scenarios'}).click();
    await idle();
    await screenshot('party');

    result.ok = true;
} catch (error) {
    result.ok = false;
    result.error = String(error && error.stack || error);
    log('FAILED:', result.error);
    try {
        await page.screenshot({path: path.join(SCREENSHOTS, 'failure.png')});
        result.failureScreenshot = path.join(SCREENSHOTS, 'failure.png');
    } catch (error2) {
        log('no failure screenshot:', String(error2));
    }
} finally {
    await context.close();
    fs.rmSync(userDataDir, {recursive: true, force: true});
}
console.log('RESULT ' + JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
