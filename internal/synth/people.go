package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// culture holds the invented names, places and number formats of one
// language area. Names are common given and family names; the places and
// institutions do not exist.
type culture struct {
	code    string
	country string
	// families lists family names; a name with a '|' has a male and a
	// female form ("Kowalski|Kowalska").
	families []string
	female   []string
	male     []string
	cities   []string
	streets  []string
	// address formats street, number, postcode, city.
	address func(street string, num int, post int, city string) string
	// phone formats a fake telephone number of at most 16 characters.
	phone func(r *rand.Rand) string
	// postcode returns a postcode in the country's style.
	postcode func(r *rand.Rand) int
	// insts are invented institutions in the country.
	insts []instTemplate
	// ideographic, when set, holds for each family and given name its
	// ideographic and phonetic forms ("山田|やまだ"), so PN values carry
	// all three component groups.
	ideographic map[string]string
	// doctor is the PN name prefix used for physicians.
	doctor string
}

type instTemplate struct {
	name, dept, street string
	city               int // index into cities
}

func digits(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	return b.String()
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

var cultures = []*culture{
	{
		code: "DE", country: "Germany", doctor: "Dr.",
		families: []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Wolf", "Schröder", "Neumann", "Zimmermann", "Krüger", "Hartmann", "Lange", "Köhler", "Jäger"},
		female:   []string{"Anna", "Ursula", "Monika", "Petra", "Sabine", "Jutta", "Brigitte", "Renate", "Gisela", "Käthe", "Lena", "Sophie", "Bärbel"},
		male:     []string{"Jürgen", "Klaus", "Wolfgang", "Hans", "Dieter", "Günter", "Uwe", "Stefan", "Frank", "Bernd", "Jörg", "Lukas", "Björn"},
		cities:   []string{"Nordhafen", "Altenbruck", "Kleinwiesental", "Bad Sonnfeld"},
		streets:  []string{"Lindenstraße", "Hauptstraße", "Gartenweg", "Mühlenweg", "Schillerstraße", "Am Kirchberg", "Rosenallee"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %05d %s", s, n, p, c)
		},
		postcode: func(r *rand.Rand) int { return 10000 + r.IntN(89999) },
		phone:    func(r *rand.Rand) string { return "+49 " + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 4) },
		insts: []instTemplate{
			{"Klinikum Nordhafen", "Radiologie", "Lindenallee 5", 0},
			{"Universitätsklinikum Altenbruck", "Klinik für Nuklearmedizin", "Spitalgasse 12", 1},
		},
	},
	{
		code: "ES", country: "Spain", doctor: "Dr.",
		families: []string{"García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Navarro", "Núñez"},
		female:   []string{"María", "Carmen", "Lucía", "Isabel", "Pilar", "Dolores", "Ana", "Marta", "Elena", "Begoña"},
		male:     []string{"José", "Antonio", "Manuel", "Francisco", "Javier", "Jesús", "Carlos", "Ángel", "Íñigo", "Sergio"},
		cities:   []string{"Valdeluna", "San Telmo del Río", "Villarreina", "Puerto Albar"},
		streets:  []string{"Calle Mayor", "Avenida de la Constitución", "Calle del Olmo", "Paseo de la Ribera", "Calle San Roque"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %05d %s", s, n, p, c)
		},
		postcode: func(r *rand.Rand) int { return 1000 + r.IntN(51000) },
		phone:    func(r *rand.Rand) string { return "+34 9" + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 3) },
		insts: []instTemplate{
			{"Hospital Universitario Valdeluna", "Servicio de Radiodiagnóstico", "Avenida de los Tilos 3", 0},
			{"Clínica Oncológica San Telmo", "Medicina Nuclear", "Calle del Pilar 27", 1},
		},
	},
	{
		code: "IT", country: "Italy", doctor: "Dott.",
		families: []string{"Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti"},
		female:   []string{"Giulia", "Francesca", "Chiara", "Rosa", "Lucia", "Anna", "Maria", "Paola", "Elena", "Giovanna"},
		male:     []string{"Giuseppe", "Giovanni", "Antonio", "Mario", "Luigi", "Francesco", "Niccolò", "Paolo", "Marco", "Andrea"},
		cities:   []string{"Borgoalto", "Val Serena", "Montecastro", "San Vitaliano"},
		streets:  []string{"Via Roma", "Via Garibaldi", "Corso Italia", "Via dei Mille", "Piazza del Duomo"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %05d %s", s, n, p, c)
		},
		postcode: func(r *rand.Rand) int { return 10000 + r.IntN(89999) },
		phone:    func(r *rand.Rand) string { return "+39 0" + digits(r, 1) + " " + digits(r, 4) + " " + digits(r, 3) },
		insts: []instTemplate{
			{"Ospedale Santa Chiara di Borgoalto", "Radiologia Diagnostica", "Via degli Orti 14", 0},
			{"Istituto Oncologico Val Serena", "Diagnostica per Immagini", "Viale dei Pini 2", 1},
		},
	},
	{
		code: "FR", country: "France", doctor: "Dr",
		families: []string{"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Lefèvre", "Girard", "Fournier", "Mercier"},
		female:   []string{"Marie", "Françoise", "Hélène", "Élodie", "Chloé", "Nathalie", "Sylvie", "Anaïs"},
		male:     []string{"Jean", "François", "Jérôme", "Benoît", "Loïc", "Philippe", "Michel", "Gaël"},
		cities:   []string{"Sainte-Ombeline", "Beaumarais", "Villefranche-sur-Lise"},
		streets:  []string{"Rue de la République", "Avenue Victor Hugo", "Rue des Écoles", "Boulevard Pasteur"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%d %s, %05d %s", n, s, p, c)
		},
		postcode: func(r *rand.Rand) int { return 1000 + r.IntN(94000) },
		phone:    func(r *rand.Rand) string { return "+33 " + digits(r, 1) + digits(r, 8) },
		insts: []instTemplate{
			{"Hôpital Sainte-Ombeline", "Service d'Imagerie Médicale", "12 Rue de l'Hôpital", 0},
			{"Centre de Lutte contre le Cancer de Beaumarais", "Médecine Nucléaire", "4 Allée des Tilleuls", 1},
		},
	},
	{
		code: "DK", country: "Denmark", doctor: "Dr.",
		families: []string{"Østergård", "Hansen", "Jensen", "Nielsen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen", "Jørgensen", "Kristiansen"},
		female:   []string{"Ingrid", "Kirsten", "Mette", "Hanne", "Birgit", "Åse", "Signe", "Søs"},
		male:     []string{"Søren", "Lars", "Jens", "Niels", "Bjørn", "Mads", "Henrik", "Ole"},
		cities:   []string{"Østerhavn", "Nørrebæk", "Lilleå"},
		streets:  []string{"Strandvejen", "Kirkegade", "Skovvej", "Møllevej"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %04d %s", s, n, p, c)
		},
		postcode: func(r *rand.Rand) int { return 1000 + r.IntN(8999) },
		phone: func(r *rand.Rand) string {
			return "+45 " + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 2)
		},
		insts: []instTemplate{
			{"Østerhavn Universitetshospital", "Røntgen og Skanning", "Hospitalsvej 1", 0},
		},
	},
	{
		code: "IE", country: "Ireland", doctor: "Dr",
		families: []string{"Murphy", "O'Brien", "Walsh", "Byrne", "Kelly", "O'Sullivan", "Ryan", "Doyle", "Smith", "McCarthy", "Ó Briain"},
		female:   []string{"Mary", "Sarah", "Margaret", "Siobhán", "Emma", "Claire", "Joan", "Aoife"},
		male:     []string{"John", "Patrick", "Michael", "Seán", "David", "Thomas", "James", "Ciarán"},
		cities:   []string{"Kilmorrow", "Ballyglas", "Dunmore Bay"},
		streets:  []string{"Main Street", "Church Road", "Harbour View", "Green Lane"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%d %s, %s, K%02d X%03d", n, s, c, p%100, p%1000)
		},
		postcode: func(r *rand.Rand) int { return r.IntN(100000) },
		phone:    func(r *rand.Rand) string { return "+353 " + digits(r, 1) + " " + digits(r, 3) + " " + digits(r, 4) },
		insts: []instTemplate{
			{"Kilmorrow General Hospital", "Department of Radiology", "Hospital Road", 0},
		},
	},
	{
		code: "PL", country: "Poland", doctor: "dr",
		families: []string{"Nowak", "Kowalski|Kowalska", "Wiśniewski|Wiśniewska", "Wójcik", "Kamiński|Kamińska", "Lewandowski|Lewandowska", "Zieliński|Zielińska", "Łukasiewicz", "Szymański|Szymańska", "Dąbrowski|Dąbrowska"},
		female:   []string{"Małgorzata", "Zofia", "Agnieszka", "Katarzyna", "Krystyna", "Barbara", "Jadwiga"},
		male:     []string{"Piotr", "Krzysztof", "Tomasz", "Andrzej", "Paweł", "Łukasz", "Zbigniew"},
		cities:   []string{"Zielonogród", "Brzezinka Wielka", "Nowy Dwór Leśny"},
		streets:  []string{"ul. Kwiatowa", "ul. Lipowa", "ul. Ogrodowa", "ul. Szkolna"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %02d-%03d %s", s, n, p/1000%100, p%1000, c)
		},
		postcode: func(r *rand.Rand) int { return r.IntN(100000) },
		phone:    func(r *rand.Rand) string { return "+48 " + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 4) },
		insts: []instTemplate{
			{"Szpital Wojewódzki w Zielonogrodzie", "Zakład Radiologii", "ul. Szpitalna 8", 0},
		},
	},
	{
		code: "CZ", country: "Czechia", doctor: "MUDr.",
		families: []string{"Dvořák|Dvořáková", "Novotný|Novotná", "Svoboda|Svobodová", "Černý|Černá", "Procházka|Procházková", "Kučera|Kučerová"},
		female:   []string{"Jana", "Zdeňka", "Věra", "Hana", "Lenka"},
		male:     []string{"Zdeněk", "Jiří", "Petr", "Miroslav", "Tomáš"},
		cities:   []string{"Horní Lhota nad Sázavou", "Kamenná Ves"},
		streets:  []string{"Nádražní", "Husova", "Školní", "Zahradní"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s %d, %03d %02d %s", s, n, p/100%1000, p%100, c)
		},
		postcode: func(r *rand.Rand) int { return 10000 + r.IntN(70000) },
		phone:    func(r *rand.Rand) string { return "+420 " + digits(r, 3) + " " + digits(r, 3) + " " + digits(r, 3) },
		insts: []instTemplate{
			{"Krajská nemocnice Kamenná Ves", "Radiodiagnostické oddělení", "Nemocniční 4", 1},
		},
	},
	{
		code: "TR", country: "Türkiye", doctor: "Dr.",
		families: []string{"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Özdemir"},
		female:   []string{"Ayşe", "Fatma", "Elif", "Zeynep", "Emine", "Gülşen"},
		male:     []string{"Mehmet", "Mustafa", "Ahmet", "Emre", "İbrahim", "Hüseyin"},
		cities:   []string{"Yeşilköy Sahil", "Karaçam"},
		streets:  []string{"Atatürk Caddesi", "Cumhuriyet Sokak", "Gül Sokak"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%s No:%d, %05d %s", s, n, p, c)
		},
		postcode: func(r *rand.Rand) int { return 10000 + r.IntN(80000) },
		phone:    func(r *rand.Rand) string { return "+90 " + digits(r, 3) + " " + digits(r, 3) + " " + digits(r, 4) },
		insts: []instTemplate{
			{"Karaçam Devlet Hastanesi", "Radyoloji Bölümü", "Sağlık Caddesi 1", 1},
		},
	},
	{
		code: "JP", country: "Japan", doctor: "",
		families: []string{"Yamada", "Tanaka", "Suzuki", "Sato", "Takahashi"},
		female:   []string{"Hanako", "Yoko", "Keiko"},
		male:     []string{"Taro", "Hiroshi", "Kenji"},
		cities:   []string{"Minato-Kita"},
		streets:  []string{"Sakura-dori"},
		address: func(s string, n, p int, c string) string {
			return fmt.Sprintf("%d-%d %s, %s %03d-%04d", n, p%20+1, s, c, p/10000%1000, p%10000)
		},
		postcode: func(r *rand.Rand) int { return r.IntN(10000000) },
		phone:    func(r *rand.Rand) string { return "+81 3 " + digits(r, 4) + " " + digits(r, 4) },
		ideographic: map[string]string{
			"Yamada": "山田|やまだ", "Tanaka": "田中|たなか", "Suzuki": "鈴木|すずき", "Sato": "佐藤|さとう", "Takahashi": "高橋|たかはし",
			"Hanako": "花子|はなこ", "Yoko": "洋子|ようこ", "Keiko": "恵子|けいこ",
			"Taro": "太郎|たろう", "Hiroshi": "博|ひろし", "Kenji": "健二|けんじ",
		},
	},
}

// otherCulture picks the culture of a patient from abroad; Japanese
// names (with ideographic and phonetic forms) are rarer on purpose.
func otherCulture(r *rand.Rand) *culture {
	for {
		c := pick(r, cultures)
		if c.code == "JP" && r.IntN(4) != 0 {
			continue
		}
		return c
	}
}

// person is a generated name.
type person struct {
	family, given, middle, prefix string
	cult                          *culture
}

func newPerson(r *rand.Rand, c *culture, sex byte) person {
	fam := pick(r, c.families)
	if a, b, ok := strings.Cut(fam, "|"); ok {
		fam = a
		if sex == 'F' {
			fam = b
		}
	}
	var given string
	if sex == 'F' {
		given = pick(r, c.female)
	} else {
		given = pick(r, c.male)
	}
	p := person{family: fam, given: given, cult: c}
	if c.code == "IE" && r.IntN(4) == 0 {
		if sex == 'F' {
			p.middle = pick(r, c.female)
		} else {
			p.middle = pick(r, c.male)
		}
		if p.middle == given {
			p.middle = ""
		}
	}
	return p
}

// PN formats the name as a DICOM person name, with ideographic and
// phonetic component groups when the culture has them.
func (p person) PN() string {
	alpha := joinPN(p.family, p.given, p.middle, p.prefix)
	if p.cult != nil && p.cult.ideographic != nil {
		fi, fp, _ := strings.Cut(p.cult.ideographic[p.family], "|")
		gi, gp, _ := strings.Cut(p.cult.ideographic[p.given], "|")
		if fi != "" && gi != "" {
			return alpha + "=" + fi + "^" + gi + "=" + fp + "^" + gp
		}
	}
	return alpha
}

func joinPN(family, given, middle, prefix string) string {
	parts := []string{family, given, middle, prefix}
	n := len(parts)
	for n > 1 && parts[n-1] == "" {
		n--
	}
	return strings.Join(parts[:n], "^")
}

// doctorPN formats a physician's name with the culture's prefix.
func (p person) doctorPN() string {
	q := p
	q.prefix = p.cult.doctor
	q.middle = ""
	return q.PN()
}

// display is "Given Family" as people write it in free text.
func (p person) display() string {
	if p.middle != "" {
		return p.given + " " + p.middle + " " + p.family
	}
	return p.given + " " + p.family
}
