import OrderlyEventStore
import Testing

@Suite struct SQLScriptTests {
    @Test func splitsOnSemicolonsOutsideQuotesCommentsAndDollarQuotes() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'a;b');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            SELECT "odd;name" FROM a
            """
        #expect(
            SQLScript.statements(in: script) == [
                "CREATE TABLE a (x text DEFAULT 'a;b')",
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT \"odd;name\" FROM a",
            ])
    }

    @Test func emptyStatementsAreDropped() {
        #expect(SQLScript.statements(in: " ;\n; SELECT 1;;") == ["SELECT 1"])
    }
}
