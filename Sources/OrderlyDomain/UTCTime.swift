import Foundation

/// Times and days in UTC, computed by hand: the projector formats a time for nearly every event,
/// and Foundation's ISO 8601 format style costs tens of microseconds a call on Linux.
public enum UTCTime {
    /// `2026-11-23T09:00:00.123Z`, milliseconds truncated: the same text as
    /// `Date.ISO8601FormatStyle(includingFractionalSeconds: true)` (a test holds them equal).
    public static func iso8601(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        self.appendISO8601(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The same text as `iso8601`, appended as bytes (JSON writers, exports: no String in between).
    public static func appendISO8601(_ date: Date, to bytes: inout [UInt8]) {
        let milliseconds = self.milliseconds(date)
        let (days, inDay) = self.split(milliseconds, by: 86_400_000)
        let (year, month, day) = self.civil(days)
        self.appendDigits(year, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        self.appendDigits(month, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        self.appendDigits(day, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        self.appendDigits(inDay / 3_600_000, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        self.appendDigits(inDay / 60_000 % 60, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        self.appendDigits(inDay / 1000 % 60, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        self.appendDigits(inDay % 1000, width: 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// `value` in decimal, zero-padded to `width` (wider values and negatives as `String` writes them).
    static func appendDigits(_ value: Int64, width: Int, to bytes: inout [UInt8]) {
        guard value >= 0, value < 10_000 else {
            let digits = String(value)
            if digits.utf8.count < width { bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - digits.utf8.count)) }
            bytes.append(contentsOf: digits.utf8)
            return
        }
        var divisor: Int64 = 1
        for _ in 1..<max(width, value >= 1000 ? 4 : value >= 100 ? 3 : value >= 10 ? 2 : 1) { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    /// A time a person typed (a query parameter, a CLI option): ISO 8601 with or without fractional
    /// seconds and with any offset, or a bare `yyyy-MM-dd` for that day's UTC midnight.
    public static func parseInput(_ text: String) -> Date? {
        if let date = Self.parse(text) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
        if text.utf8.count == 10, let date = try? Date(text + "T00:00:00Z", strategy: Date.ISO8601FormatStyle()) { return date }
        return nil
    }

    /// Reads `yyyy-MM-ddTHH:mm:ss.SSSZ` (what `iso8601` writes) without Foundation's parser, to the
    /// same `Date` it would give (a test holds them equal); nil for any other shape.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."), bytes[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), let millisecond = number(20..<23),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        let seconds = self.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        let sinceReference = seconds - 978_307_200
        // Within months of 2001-01-01 (Foundation's reference date; measured: 10^4 to 10^7 s either
        // side) Foundation rounds the fraction differently now and then. Such times never occur in the
        // log, so they go through Foundation itself to stay equal to it.
        guard sinceReference >= 20_000_000 else {
            return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        // Like Foundation: whole seconds since 2001, plus the fraction.
        return Date(timeIntervalSinceReferenceDate: Double(sinceReference) + Double(millisecond) / 1000)
    }

    /// Days from 1970-01-01 to the date (H. Hinnant's days_from_civil).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let year = month <= 2 ? year - 1 : year
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Milliseconds since 1970, rounded down: whole seconds, then the fraction's milliseconds, as
    /// Foundation's formatter takes them (multiplying the whole value by 1000 first rounds
    /// differently now and then).
    public static func milliseconds(_ date: Date) -> Int64 {
        // From the 1970 interval on purpose: an event's time reaches the projector both from PostgreSQL
        // and from a Kafka header (the 1970 interval as text), two Dates an ulp apart; in 1970 seconds
        // they are the same number, so both paths write the same text (a live projector and a rebuild
        // must agree). Computed from the 2001 interval they split at millisecond boundaries (seen: a
        // verify difference of .024 vs .025).
        let time = date.timeIntervalSince1970
        let seconds = time.rounded(.down)
        return Int64(seconds) * 1000 + Int64(((time - seconds) * 1000).rounded(.down))
    }

    /// The UTC day of `date`: `yyyy-MM-dd` and the number yyyyMMdd.
    public static func day(_ date: Date) -> (text: String, number: Int64) {
        let (year, month, day) = self.civil(self.split(self.milliseconds(date), by: 86_400_000).quotient)
        var text = ""
        self.append(year, width: 4, to: &text)
        text += "-"
        self.append(month, width: 2, to: &text)
        text += "-"
        self.append(day, width: 2, to: &text)
        return (text, year * 10000 + month * 100 + day)
    }

    static func split(_ value: Int64, by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    /// Year, month and day of the `days`-th day after 1970-01-01 (H. Hinnant's civil_from_days).
    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func append(_ value: Int64, width: Int, to text: inout String) {
        let digits = String(value)
        if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
        text += digits
    }
}
