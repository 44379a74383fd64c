package charset

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// example is a value in a character set, with its raw bytes and text.
type example struct {
	name  string
	terms []string
	kind  Kind
	raw   string
	text  string
	// exact means Encode(text) must give raw byte for byte; otherwise
	// raw holds redundant escape sequences that the encoder leaves out.
	exact bool
}

// Examples from PS3.5 Annexes H (Japanese), I (Korean), J (Unicode) and
// K (Chinese), from the character set test files that ship with pydicom
// (single-byte sets), and constructed ones that follow the same rules.
var examples = []example{
	// Default repertoire and the single-byte sets of Table C.12-2.
	{"ascii", nil, PersonName, "Smith^John", "Smith^John", true},
	{"ISO_IR 6", []string{"ISO_IR 6"}, Multi, `ABC\DEF`, `ABC\DEF`, true},
	{"french", []string{"ISO_IR 100"}, PersonName, "Buc^J\xe9r\xf4me", "Buc^Jérôme", true},
	{"german", []string{"ISO_IR 100"}, PersonName, "\xc4neas^R\xfcdiger", "Äneas^Rüdiger", true},
	{"french multi", []string{"ISO_IR 100"}, PersonName, "Buc^J\xe9r\xf4me\\Buc^J\xe9r\xf4me", `Buc^Jérôme\Buc^Jérôme`, true},
	{"latin2", []string{"ISO_IR 101"}, PersonName, "Dvo\xf8\xe1k^Anton\xedn", "Dvořák^Antonín", true},
	{"latin3", []string{"ISO_IR 109"}, PersonName, "\xd5u\xbfeppi^\xa1abib", "Ġużeppi^Ħabib", true},
	{"latin4", []string{"ISO_IR 110"}, PersonName, "\xd3\xbani\xf1\xb9^J\xe0nis", "Ķēniņš^Jānis", true},
	{"greek", []string{"ISO_IR 126"}, PersonName, "\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2", "Διονυσιος", true},
	{"russian", []string{"ISO_IR 144"}, PersonName, "\xbb\xee\xdace\xdc\xd1yp\xd3", "Люк" + "ce" + "мб" + "yp" + "г", true},
	{"hebrew", []string{"ISO_IR 138"}, PersonName, "\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4", "שרון^דבורה", true},
	{"arabic", []string{"ISO_IR 127"}, PersonName, "\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1", "قباني^لنزار", true},
	{"turkish", []string{"ISO_IR 148"}, PersonName, "\xde\xfckr\xfc^Y\xfdlmaz", "Şükrü^Yılmaz", true},
	{"latin9", []string{"ISO_IR 203"}, Text, "\xbcuvre^Zo\xeb \xa4", "Œuvre^Zoë €", true},
	{"thai", []string{"ISO_IR 166"}, PersonName, "\xca\xc1\xaa\xd2\xc2^\xe3\xa8\xb4\xd5", "สมชาย^ใจดี", true},
	{"katakana", []string{"ISO_IR 13"}, PersonName, "\xd4\xcf\xc0\xde^\xc0\xdb\xb3", "ﾔﾏﾀﾞ^ﾀﾛｳ", true},

	// PS3.5 H.3.1: JIS X 0208 in G0, default repertoire as value 1.
	{"H.3.1", []string{"", "ISO 2022 IR 87"}, PersonName,
		"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
		"Yamada^Tarou=山田^太郎=やまだ^たろう", true},
	// PS3.5 H.3.2: JIS X 0201 as value 1, so ESC ( J returns to it.
	{"H.3.2", []string{"ISO 2022 IR 13", "ISO 2022 IR 87"}, PersonName,
		"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J",
		"ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", true},
	{"japanese multi-valued", []string{"", "ISO 2022 IR 87"}, PersonName,
		"\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B\\\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
		`やまだ^たろう\やまだ^たろう`, true},
	// Two lines of text; the JIS code of 目 ends in a backslash byte.
	{"japanese text", []string{"", "ISO 2022 IR 87"}, Text,
		"1\x1b$B9TL\\\x1b(B\r\n2\x1b$B9TL\\\x1b(B", "1行目\r\n2行目", true},
	{"japanese LO with backslash byte", []string{"", "ISO 2022 IR 87"}, Multi,
		"\x1b$BL\\\x1b(B\\A", `目\A`, true},
	{"JIS X 0212", []string{"", "ISO 2022 IR 87", "ISO 2022 IR 159"}, PersonName,
		"\x1b$(Dl?\x1b$B30\x1b(B^\x1b$B?9\x1b(B", "鷗外^森", true},
	{"kanji then katakana", []string{"ISO 2022 IR 13", "ISO 2022 IR 87"}, Multi,
		"\x1b$B;3\x1b(J\xd4", "山ﾔ", true},

	// PS3.5 I.2: KS X 1001 in G1, designated again after each delimiter.
	{"I.2", []string{"", "ISO 2022 IR 149"}, PersonName,
		"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf",
		"Hong^Gildong=洪^吉洞=홍^길동", true},
	{"korean text", []string{"", "ISO 2022 IR 149"}, Text,
		"The 1st line includes \x1b$)C\xc7\xd1\xb1\xdb.\r\nThe 2nd line includes \x1b$)C\xc7\xd1\xb1\xdb, too.",
		"The 1st line includes 한글.\r\nThe 2nd line includes 한글, too.", true},
	{"korean with redundant escape", []string{"", "ISO 2022 IR 149"}, PersonName,
		"\x1b$)C\xb1\xe8\xc8\xf1\xc1\xdf\x1b(B ", "김희중 ", false},

	// PS3.5 J: UTF-8.
	{"J", []string{"ISO_IR 192"}, PersonName,
		"Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1=", "Wang^XiaoDong=王^小東=", true},

	// PS3.5 K: GB18030, GBK and GB 2312 with code extensions.
	{"K GB18030", []string{"GB18030"}, PersonName,
		"Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=", "Wang^XiaoDong=王^小东=", true},
	{"GB18030 text", []string{"GB18030"}, Text, "\xd6\xd0\xce\xc4\r\n", "中文\r\n", true},
	{"GB18030 four-byte", []string{"GB18030"}, Text, "\x81\x30\x81\x30", "\u0080", true},
	{"GBK", []string{"GBK"}, PersonName, "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=", "Wang^XiaoDong=王^小东=", true},
	{"K ISO 2022 IR 58", []string{"", "ISO 2022 IR 58"}, PersonName,
		"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=", "Zhang^XiaoDong=张^小东=", true},
	{"chinese text", []string{"", "ISO 2022 IR 58"}, Text,
		"\x1b$)A\xb5\xda\xd2\xbb\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n\x1b$)A\xd6\xd0\xce\xc4",
		"第一行文字。\r\n中文", true},

	// Two single-byte sets with code extensions: G1 returns to value 1.
	{"latin1 and greek", []string{"ISO 2022 IR 100", "ISO 2022 IR 126"}, PersonName,
		"M\xfcller^\x1b-F\xd3\xf9\xea\xf1\xdc\xf4\xe7\xf2\x1b-A", "Müller^Σωκράτης", true},
	{"latin1 and cyrillic text", []string{"ISO 2022 IR 100", "ISO 2022 IR 144"}, Text,
		"\xc4 \x1b-L\xbb\xee\x1b-A\r\n\xc4", "Ä Лю\r\nÄ", true},
}

func mustParse(t testing.TB, terms []string) *Set {
	t.Helper()
	s, err := Parse(terms)
	if err != nil {
		t.Fatalf("Parse(%q): %v", terms, err)
	}
	return s
}

func TestDecodeExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			s := mustParse(t, ex.terms)
			if got := s.Decode([]byte(ex.raw), ex.kind); got != ex.text {
				t.Errorf("Decode(%q) = %q, want %q", ex.raw, got, ex.text)
			}
		})
	}
}

func TestEncodeExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			s := mustParse(t, ex.terms)
			got, err := s.Encode(ex.text, ex.kind)
			if err != nil {
				t.Fatalf("Encode(%q): %v", ex.text, err)
			}
			if ex.exact && string(got) != ex.raw {
				t.Errorf("Encode(%q) = %q, want %q", ex.text, got, ex.raw)
			}
			// Round trips both ways.
			if back := s.Decode(got, ex.kind); back != ex.text {
				t.Errorf("Decode(Encode(%q)) = %q", ex.text, back)
			}
			if ex.exact {
				again, err := s.Encode(s.Decode([]byte(ex.raw), ex.kind), ex.kind)
				if err != nil || string(again) != ex.raw {
					t.Errorf("Encode(Decode(%q)) = %q, %v", ex.raw, again, err)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		terms     []string
		want      []string
		errIs     error
		utf8, def bool
	}{
		{nil, nil, nil, false, true},
		{[]string{""}, []string{""}, nil, false, true},
		{[]string{"ISO_IR 6"}, []string{"ISO_IR 6"}, nil, false, true},
		{[]string{"ISO 2022 IR 6", "ISO 2022 IR 87"}, []string{"ISO 2022 IR 6", "ISO 2022 IR 87"}, nil, false, false},
		{[]string{"ISO_IR 100"}, []string{"ISO_IR 100"}, nil, false, false},
		{[]string{" ISO_IR 192 "}, []string{"ISO_IR 192"}, nil, true, false},
		{[]string{"", "ISO 2022 IR 149", ""}, []string{"", "ISO 2022 IR 149"}, nil, false, false},
		{[]string{"ISO 2022 GBK"}, []string{"GBK"}, nil, false, false},
		{[]string{"ISO 2022 58"}, []string{"ISO 2022 IR 58"}, nil, false, false},
		{[]string{"ISO IR 100"}, []string{"ISO_IR 100"}, ErrMisspelledTerm, false, false},
		{[]string{"ISO-IR 144"}, []string{"ISO_IR 144"}, ErrMisspelledTerm, false, false},
		{[]string{"iso_ir_192"}, []string{"ISO_IR 192"}, ErrMisspelledTerm, true, false},
		{[]string{"ISO_IR100"}, []string{"ISO_IR 100"}, ErrMisspelledTerm, false, false},
		{[]string{"", "ISO_2022_IR_87"}, []string{"", "ISO 2022 IR 87"}, ErrMisspelledTerm, false, false},
		{[]string{"ISO 2022IR 13", "ISO 2022 IR87"}, []string{"ISO 2022 IR 13", "ISO 2022 IR 87"}, ErrMisspelledTerm, false, false},
		{[]string{"KLINGON"}, []string{"KLINGON"}, ErrUnknownTerm, false, false},
		{[]string{"", "ISO 2022 IR 999"}, []string{""}, ErrUnknownTerm, false, true},
		{[]string{"ISO_IR 192", "ISO 2022 IR 87"}, []string{"ISO_IR 192"}, ErrIgnoredTerm, true, false},
		{[]string{"ISO 2022 IR 100", "GB18030"}, []string{"ISO 2022 IR 100"}, ErrIgnoredTerm, false, false},
	}
	for _, tt := range tests {
		s, err := Parse(tt.terms)
		if s == nil {
			t.Fatalf("Parse(%q) returned a nil Set", tt.terms)
		}
		if tt.errIs == nil && err != nil {
			t.Errorf("Parse(%q): unexpected error %v", tt.terms, err)
		}
		if tt.errIs != nil && !errors.Is(err, tt.errIs) {
			t.Errorf("Parse(%q): error %v, want %v", tt.terms, err, tt.errIs)
		}
		if got := s.Terms(); !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q).Terms() = %q, want %q", tt.terms, got, tt.want)
		}
		if s.IsUTF8() != tt.utf8 || s.IsDefault() != tt.def {
			t.Errorf("Parse(%q): IsUTF8 %v IsDefault %v, want %v %v", tt.terms, s.IsUTF8(), s.IsDefault(), tt.utf8, tt.def)
		}
	}
}

func TestUnknownTermDecodesAsLatin1(t *testing.T) {
	t.Parallel()
	s, err := Parse([]string{"ISO_IR 999"})
	if !errors.Is(err, ErrUnknownTerm) {
		t.Fatalf("error %v, want ErrUnknownTerm", err)
	}
	if got := s.Decode([]byte("J\xe9r\xf4me"), PersonName); got != "Jérôme" {
		t.Errorf("Decode = %q", got)
	}
}

func TestZeroAndNilSet(t *testing.T) {
	t.Parallel()
	var zero Set
	for _, s := range []*Set{nil, &zero} {
		if !s.IsDefault() || s.IsUTF8() || s.Terms() != nil || s.UsesCodeExtensions() {
			t.Errorf("%#v: not the default repertoire", s)
		}
		if got := s.Decode([]byte(`Doe^John\Roe^Jane`), PersonName); got != `Doe^John\Roe^Jane` {
			t.Errorf("Decode = %q", got)
		}
		// Bytes above 0x7F are outside the default repertoire; they are
		// read as ISO 8859-1 rather than lost.
		if got := s.Decode([]byte("Jos\xe9"), PersonName); got != "José" {
			t.Errorf("Decode = %q", got)
		}
		if got, err := s.Encode("Doe^John", PersonName); err != nil || string(got) != "Doe^John" {
			t.Errorf("Encode = %q, %v", got, err)
		}
		if _, err := s.Encode("José", PersonName); !errors.Is(err, ErrUnrepresentable) {
			t.Errorf("Encode(José) error %v, want ErrUnrepresentable", err)
		}
	}
}

func TestDelimitersByKind(t *testing.T) {
	t.Parallel()
	korean := mustParse(t, []string{"", "ISO 2022 IR 149"})
	// After '^' a PN returns to the initial state, where G1 is empty and
	// bytes above 0x7F read as ISO 8859-1; in text '^' is an ordinary
	// character.
	raw := []byte("\x1b$)C\xc7\xd1^\xc7\xd1")
	if got := korean.Decode(raw, PersonName); got != "한^ÇÑ" {
		t.Errorf("PN: %q", got)
	}
	if got := korean.Decode(raw, Text); got != "한^한" {
		t.Errorf("Text: %q", got)
	}
	if got := korean.Decode(raw, Multi); got != "한^한" {
		t.Errorf("Multi: %q", got)
	}
	raw = []byte("\x1b$)C\xc7\xd1\\\xc7\xd1")
	if got := korean.Decode(raw, Multi); got != `한\ÇÑ` {
		t.Errorf("Multi backslash: %q", got)
	}
	if got := korean.Decode(raw, Text); got != `한\한` {
		t.Errorf("Text backslash: %q", got)
	}
	for _, c := range "\r\n\t\f" {
		raw = []byte("\x1b$)C\xc7\xd1" + string(c) + "\xc7\xd1")
		if got := korean.Decode(raw, Text); got != "한"+string(c)+"ÇÑ" {
			t.Errorf("Text %q: %q", c, got)
		}
	}
	// Inside JIS X 0208 the bytes of '^', '=' and '\' are halves of
	// characters, not delimiters (ま is 0x245E).
	jis := mustParse(t, []string{"", "ISO 2022 IR 87"})
	if got := jis.Decode([]byte("\x1b$B$^$=L\\\x1b(B"), PersonName); got != "まそ目" {
		t.Errorf("JIS: %q", got)
	}
	// Encoding returns to the initial state before each delimiter of
	// the kind, and only there.
	for _, tt := range []struct {
		kind Kind
		text string
		want string
	}{
		{PersonName, "山^田", "\x1b$B;3\x1b(B^\x1b$BED\x1b(B"},
		{PersonName, "山=田", "\x1b$B;3\x1b(B=\x1b$BED\x1b(B"},
		{PersonName, `山\田`, "\x1b$B;3\x1b(B\\\x1b$BED\x1b(B"},
		{Multi, "山^田", "\x1b$B;3\x1b(B^\x1b$BED\x1b(B"},
		{Multi, `山\田`, "\x1b$B;3\x1b(B\\\x1b$BED\x1b(B"},
		{Text, "山\r\n田", "\x1b$B;3\x1b(B\r\n\x1b$BED\x1b(B"},
		{Text, "山田 山", "\x1b$B;3ED\x1b(B \x1b$B;3\x1b(B"},
	} {
		got, err := jis.Encode(tt.text, tt.kind)
		if err != nil || string(got) != tt.want {
			t.Errorf("Encode(%q, %v) = %q, %v; want %q", tt.text, tt.kind, got, err, tt.want)
		}
	}
	// With a single-byte set in G1 as value 1, the encoder designates it
	// again explicitly at the delimiter.
	latin := mustParse(t, []string{"ISO 2022 IR 100", "ISO 2022 IR 126"})
	got, err := latin.Encode("Ω^é", PersonName)
	if err != nil || string(got) != "\x1b-F\xd9\x1b-A^\xe9" {
		t.Errorf("Encode = %q, %v", got, err)
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		terms []string
		kind  Kind
		raw   string
		want  string
	}{
		{[]string{"ISO_IR 192"}, PersonName, "ab\xffc\xe4\xb8", "ab\uFFFDc\uFFFD\uFFFD"},
		{[]string{"ISO_IR 192"}, Text, "\x1b$B", "\x1b$B"},                        // no code extensions
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "a\x1b%Gb", "a\uFFFDb"},      // unknown escape
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "a\x1b", "a\uFFFD"},          // escape at the end
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "a\x1b$", "a\uFFFD"},         // no final byte
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "\x1b$B;", "\uFFFD"},         // half a character
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "\x1b$B;\x1b(Ba", "\uFFFDa"}, // half, then ASCII
		{[]string{"", "ISO 2022 IR 87"}, PersonName, "\x1b$B)!\x1b(B", "\uFFFD"},  // unassigned row
		{[]string{"", "ISO 2022 IR 149"}, PersonName, "\x1b$)C\xc7", "\uFFFD"},
		{[]string{"", "ISO 2022 IR 149"}, PersonName, "\x1b$)C\xc7A", "\uFFFDA"},
		{[]string{"", "ISO 2022 IR 149"}, PersonName, "\x1b$)C\xff\xa0", "\uFFFD\uFFFD"},
		{[]string{"ISO_IR 127"}, Text, "\xa1", "\uFFFD"}, // unassigned in ISO 8859-6
		{[]string{"ISO_IR 100"}, Text, "\x85", "\u0085"}, // C1 control
		{[]string{"ISO_IR 13"}, Text, "\xa0\xfe", "\uFFFD\uFFFD"},
		// Shift_JIS in a value labelled JIS X 0201 is read as Shift_JIS.
		{[]string{"ISO_IR 13"}, PersonName, "\x8eR\x93c^\xd4", "山田^ﾔ"},
		{[]string{"GB18030"}, Text, "\xd6", "\uFFFD"},
		{[]string{"GBK"}, Text, "a\x81\x30\x81\x30", "a\uFFFD0\uFFFD0"},
		// Escapes the Set does not declare are still honoured.
		{[]string{"ISO_IR 100"}, PersonName, "\x1b-F\xd9", "Ω"},
		{nil, Text, "\x1b$)C\xc7\xd1", "한"},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.terms)
		got := s.Decode([]byte(tt.raw), tt.kind)
		if got != tt.want {
			t.Errorf("%q Decode(%q) = %q, want %q", tt.terms, tt.raw, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("%q Decode(%q) is not valid UTF-8", tt.terms, tt.raw)
		}
	}
}

func TestEncodeUnrepresentable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		terms []string
		text  string
	}{
		{nil, "é"},
		{[]string{"ISO_IR 6"}, "日本"},
		{[]string{"ISO_IR 100"}, "Ω"},
		{[]string{"ISO_IR 100"}, "Ā"},
		{[]string{"ISO_IR 126"}, "é"},
		{[]string{"ISO_IR 166"}, "€"},
		{[]string{"ISO_IR 13"}, "山"},
		{[]string{"", "ISO 2022 IR 87"}, "한"},
		{[]string{"", "ISO 2022 IR 87"}, "ﾔ"}, // half-width katakana needs IR 13
		{[]string{"", "ISO 2022 IR 87"}, "①"}, // vendor extension, not JIS X 0208
		{[]string{"", "ISO 2022 IR 149"}, "ﾔ"},
		{[]string{"", "ISO 2022 IR 58"}, "한"},
		{[]string{"", "ISO 2022 IR 58"}, "ⅰ"}, // GBK addition, not GB 2312
		{[]string{"GBK"}, "한"},
		// A private-use character that the GB18030 encoder of x/text
		// maps to the wrong code; Encode refuses rather than corrupt it.
		{[]string{"GB18030"}, "\ue3d9"},
		{[]string{"ISO_IR 100"}, "a\x1bb"}, // escape character
		{nil, "\x1b$B"},
		{[]string{"ISO_IR 192"}, "bad \xff utf-8"},
		{[]string{"ISO_IR 100"}, "bad \xff utf-8"},
		{[]string{"GB18030"}, "bad \xff utf-8"},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.terms)
		got, err := s.Encode(tt.text, PersonName)
		if !errors.Is(err, ErrUnrepresentable) {
			t.Errorf("%q Encode(%q) = %q, %v; want ErrUnrepresentable", tt.terms, tt.text, got, err)
		}
	}
	// The error names the character.
	_, err := mustParse(t, []string{"ISO_IR 100"}).Encode("aΩb", Text)
	if err == nil || !strings.Contains(err.Error(), "U+03A9") {
		t.Errorf("error %v does not name U+03A9", err)
	}
}

func TestEncodeChoosesSets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		terms []string
		kind  Kind
		text  string
		want  string
	}{
		// A character in the current G1 needs no escape sequence even
		// when G0 holds JIS X 0208, beyond returning G0 to ASCII.
		{[]string{"ISO 2022 IR 100", "ISO 2022 IR 87"}, Text, "山é", "\x1b$B;3\x1b(B\xe9"},
		// Each character goes to the first declared set that has it.
		{[]string{"", "ISO 2022 IR 159", "ISO 2022 IR 87"}, Text, "山鷗", "\x1b$B;3\x1b$(Dl?\x1b(B"},
		// Windows spellings of JIS X 0208 symbols are accepted.
		{[]string{"", "ISO 2022 IR 87"}, Text, "～〜", "\x1b$B!A!A\x1b(B"},
		// GB 2312 and KS X 1001 together.
		{[]string{"", "ISO 2022 IR 58", "ISO 2022 IR 149"}, Text, "中한", "\x1b$)A\xd6\xd0\x1b$)C\xc7\xd1"},
		// Latin-1 first value, so ISO 8859-1 characters need no escape.
		{[]string{"ISO_IR 100", "ISO 2022 IR 87"}, PersonName, "Jérôme^山", "J\xe9r\xf4me^\x1b$B;3\x1b(B"},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.terms)
		got, err := s.Encode(tt.text, tt.kind)
		if err != nil || string(got) != tt.want {
			t.Errorf("%q Encode(%q) = %q, %v; want %q", tt.terms, tt.text, got, err, tt.want)
			continue
		}
		want := strings.ReplaceAll(tt.text, "～", "〜")
		if back := s.Decode(got, tt.kind); back != want {
			t.Errorf("%q Decode(Encode(%q)) = %q", tt.terms, tt.text, back)
		}
	}
}

func TestAllocations(t *testing.T) {
	ascii := []byte("Smith^John^^Dr^MD")
	latin := []byte("Buc^J\xe9r\xf4me")
	japanese := []byte("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B")
	gb := []byte("Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=")
	tests := []struct {
		terms []string
		raw   []byte
	}{
		{nil, ascii},
		{[]string{"ISO_IR 100"}, ascii},
		{[]string{"ISO_IR 192"}, ascii},
		{[]string{"ISO_IR 100"}, latin},
		{[]string{"", "ISO 2022 IR 87"}, japanese},
		{[]string{"GB18030"}, gb},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.terms)
		s.Decode(tt.raw, PersonName) // build tables
		allocs := testing.AllocsPerRun(100, func() { s.Decode(tt.raw, PersonName) })
		if allocs > 1 {
			t.Errorf("%q Decode(%q): %v allocations, want at most 1", tt.terms, tt.raw, allocs)
		}
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	// Tables are built on first use; decoding from many goroutines at
	// once must be safe (run with -race).
	s := mustParse(t, []string{"", "ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58"})
	done := make(chan string)
	for range 8 {
		go func() {
			b, err := s.Encode("山鷗한中", Text)
			if err != nil {
				done <- err.Error()
				return
			}
			done <- s.Decode(b, Text)
		}()
	}
	for range 8 {
		if got := <-done; got != "山鷗한中" {
			t.Errorf("got %q", got)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name  string
		terms []string
		raw   string
	}{
		{"ascii-default", nil, "Smith^John^^Dr^MD"},
		{"ascii-latin1", []string{"ISO_IR 100"}, "Smith^John^^Dr^MD"},
		{"ascii-utf8", []string{"ISO_IR 192"}, "Smith^John^^Dr^MD"},
		{"latin1", []string{"ISO_IR 100"}, "Buc^J\xe9r\xf4me"},
		{"utf8", []string{"ISO_IR 192"}, "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1="},
		{"japanese", []string{"", "ISO 2022 IR 87"}, "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"},
		{"gb18030", []string{"GB18030"}, "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab="},
	}
	for _, c := range cases {
		s := mustParse(b, c.terms)
		raw := []byte(c.raw)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Decode(raw, PersonName)
			}
		})
	}
}

func BenchmarkEncodeJapanese(b *testing.B) {
	s := mustParse(b, []string{"", "ISO 2022 IR 87"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Encode("Yamada^Tarou=山田^太郎=やまだ^たろう", PersonName); err != nil {
			b.Fatal(err)
		}
	}
}
