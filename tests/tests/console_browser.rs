//! The local console in a real browser (headless Chromium through
//! ChromeDriver): the executions list and its filters, an execution page
//! with its graph, path and failed state, approving a pending request and
//! seeing the workflow finish, the invoice PDF it wrote, and a saved Logs
//! Insights query run from the page. Screenshots land in
//! `target/console-screenshots/` (look at them).

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use tests::browser::{Driver, screenshot};
use tests::local_stack::{Builder, LocalStack, event};

fn input(correlation_id: &str, order_file: &str) -> Value {
    json!({ "correlation_id": correlation_id, "order": event(order_file) })
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn execution_url(stack: &LocalStack, name: &str) -> String {
    let arn = stack
        .stack
        .state_machine_arn("InvoiceStateMachine")
        .unwrap_or_else(|e| panic!("{e}"))
        .replace(":stateMachine:", ":execution:");
    let page = format!("{}execution", stack.stack.console_url());
    reqwest::Url::parse_with_params(&page, [("arn", format!("{arn}:{name}"))])
        .unwrap_or_else(|e| panic!("{page}: {e}"))
        .to_string()
}

/// Opens the approvals page until `correlation_id`'s request is on it.
async fn open_request(browser: &Client, approvals: &str, correlation_id: &str) {
    for _ in 0..100 {
        browser
            .goto(approvals)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let card = format!("[data-correlation='{correlation_id}']");
        if browser.find(Locator::Css(&card)).await.is_ok() {
            return;
        }
        // The request is on its way: the workflow's notify task sends it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the approval request of {correlation_id} never reached the approvals page");
}

#[tokio::test]
async fn the_console_shows_runs_answers_approvals_and_runs_saved_queries() {
    let stack = Builder::project().start().await;
    let console = stack.stack.console_url();
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // A failed run, then one that waits for a person's approval.
    let bad = stack
        .run(
            "InvoiceStateMachine",
            "console-bad",
            &input("order-bad-1", "invoice_order_bad.json"),
        )
        .await;
    assert_eq!(bad.status, "FAILED");
    let sfn = stack.sfn();
    let machine = stack
        .stack
        .state_machine_arn("InvoiceStateMachine")
        .unwrap_or_else(|e| panic!("{e}"));
    let waiting = devstack::workflow::start(
        &sfn,
        &machine,
        "console-big",
        &input("order-B-2002", "invoice_order_large.json"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // The list, then filtered by status and by correlation ID.
    browser
        .goto(&console)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = text(&browser, "#executions").await;
    assert!(
        listed.contains("console-bad") && listed.contains("console-big"),
        "{listed}"
    );
    assert!(
        listed.contains("order-bad-1") && listed.contains("FAILED"),
        "{listed}"
    );
    screenshot(&browser, "executions").await;
    browser
        .goto(&format!("{console}?status=FAILED"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failed_only = text(&browser, "#executions").await;
    assert!(
        failed_only.contains("console-bad") && !failed_only.contains("console-big"),
        "{failed_only}"
    );
    browser
        .goto(&format!("{console}?correlation=order-B"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let by_id = text(&browser, "#executions").await;
    assert!(
        by_id.contains("console-big") && !by_id.contains("console-bad"),
        "{by_id}"
    );

    // The failed execution: the graph, the path, the failed state marked.
    browser
        .goto(&execution_url(&stack, "console-bad").await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    screenshot(&browser, "execution-failed").await;
    assert_eq!(text(&browser, "#status").await, "FAILED");
    let failed_state = text(&browser, "#failed-state").await;
    assert!(
        failed_state.contains("Price invoice") && failed_state.contains("Task.InvalidInput"),
        "{failed_state}"
    );
    let graph = browser
        .find(Locator::Css("#graph svg"))
        .await
        .unwrap_or_else(|e| panic!("no graph: {e}"))
        .html(false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for state in [
        "Price invoice",
        "Needs approval?",
        "Notify invoice failed",
        "catch States.ALL",
    ] {
        assert!(graph.contains(state), "the graph has no {state}");
    }
    // The failed state is red, a state never entered grey-on-white.
    assert!(graph.contains("#fee4e2"), "no failed state drawn");
    let path = text(&browser, "#path").await;
    assert!(
        path.contains("Check the order") && path.contains("Invoice failed"),
        "{path}"
    );
    let trail = text(&browser, "#trail").await;
    assert!(
        trail.contains("pricing") && trail.contains("task finished"),
        "{trail}"
    );
    let page = browser.source().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !page.contains("zoe.mueller@example.com"),
        "an e-mail address is shown unmasked"
    );

    // The approvals page shows the request; Approve answers the workflow.
    let approvals = format!("{console}approvals");
    let mut found = false;
    for _ in 0..100 {
        browser
            .goto(&approvals)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if browser
            .find(Locator::Css("[data-correlation='order-B-2002']"))
            .await
            .is_ok()
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        found,
        "the approval request never reached the approvals page"
    );
    let card = text(&browser, "[data-correlation='order-B-2002']").await;
    assert!(card.contains("JPY") && card.contains("B-2002"), "{card}");
    screenshot(&browser, "approvals").await;
    browser
        .find(Locator::Css(
            "[data-correlation='order-B-2002'] button.approve",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let done = stack.wait(&waiting).await;
    assert_eq!(done.status, "SUCCEEDED", "{:?}", done.cause);
    assert!(
        browser
            .find(Locator::Css("[data-correlation='order-B-2002']"))
            .await
            .is_err(),
        "still pending after approval"
    );

    // Reject fails the task with Approval.Rejected, which the workflow catches.
    let rejected = devstack::workflow::start(
        &sfn,
        &machine,
        "console-reject",
        &input("order-B-reject", "invoice_order_large.json"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    open_request(&browser, &approvals, "order-B-reject").await;
    browser
        .find(Locator::Css(
            "[data-correlation='order-B-reject'] button.reject",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let done = stack.wait(&rejected).await;
    assert_eq!(done.status, "FAILED");
    let notify_failed = done
        .path()
        .into_iter()
        .any(|s| s.name == "Notify invoice failed");
    assert!(
        notify_failed,
        "the rejection was not routed to the failure notice"
    );

    // The approved execution, and the PDF it wrote, opened from its page.
    browser
        .goto(&execution_url(&stack, "console-big").await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text(&browser, "#status").await, "SUCCEEDED");
    let link = browser
        .find(Locator::Css("#written a"))
        .await
        .unwrap_or_else(|e| panic!("no link to what the run wrote: {e}"));
    assert!(
        link.text()
            .await
            .unwrap_or_default()
            .ends_with("invoices/B-2002.pdf")
    );
    let href = link.attr("href").await.ok().flatten().unwrap_or_default();
    let sent = text(&browser, "#sent").await;
    assert!(
        sent.contains("invoice_ready"),
        "the notification is not listed: {sent}"
    );
    screenshot(&browser, "execution-succeeded").await;
    let pdf = devstack::clients::http()
        .get(format!("{}{href}", stack.stack.endpoint))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap_or_default().starts_with(b"%PDF-"));

    // A saved query, loaded and run from the Logs Insights page.
    browser
        .goto(&format!("{console}insights?saved=QueryFailures"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rows = String::new();
    for _ in 0..50 {
        browser
            .find(Locator::Css("#run"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The click navigates: wait for the answer page, not the old one.
        let answer = browser
            .wait()
            .for_element(Locator::Css("#results, #query-error"))
            .await
            .unwrap_or_else(|e| panic!("no answer after Run query: {e}"));
        rows = answer.text().await.unwrap_or_default();
        if rows.contains("Task.InvalidInput") {
            break;
        }
        // The failed run's lines may still be on their way to CloudWatch Logs.
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.back().await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        rows.contains("pricing") && rows.contains("Task.InvalidInput"),
        "{rows}"
    );
    screenshot(&browser, "insights").await;

    browser.close().await.unwrap_or_else(|e| panic!("{e}"));
    stack.finish().await;
}
