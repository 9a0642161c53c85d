import Testing

@testable import HaatFetch

/// Found by a tester: a plain web server's 404 page became the task's error as markup, and
/// its words ("File not found") were past the 200 characters kept.
@Suite struct ErrorBodyTextTests {
  @Test func anHTMLPageIsQuotedByItsWords() {
    let page = """
      <!DOCTYPE HTML>
      <html lang="en">
          <head>
              <meta charset="utf-8">
              <style type="text/css">body { color: red; }</style>
              <title>Error response</title>
          </head>
          <body>
              <h1>Error response</h1>
              <p>Error code: 404</p>
              <p>Message: File not found &amp; gone.</p>
              <script>var token = "x";</script>
          </body>
      </html>
      """
    #expect(
      ErrorBodyText.readable(page)
        == "Error response Error response Error code: 404 Message: File not found & gone.")
  }

  @Test func otherBodiesAreKeptAsTheyAre() {
    #expect(ErrorBodyText.readable(#"{"error":"<b>x</b>"}"#) == #"{"error":"<b>x</b>"}"#)
    #expect(ErrorBodyText.readable("404 Not Found") == "404 Not Found")
    #expect(ErrorBodyText.readable("<html><body>cut <a href=") == "cut")
  }
}
