"""Name pools. Every character must be encodable in Windows-1252 (cp1252)."""

from __future__ import annotations

MALE_OLD = ["William", "John", "Robert", "Peter", "David", "Michael", "George", "Kenneth", "Brian",
            "Thomas", "James", "Richard", "Edward", "Alan", "Anthony", "Dennis", "Raymond",
            "Frederick", "Patrick", "Roy", "Derek", "Albert", "Leonard", "Stanley", "Gerald",
            "Seán", "Desmond", "Clifford"]
FEMALE_OLD = ["Margaret", "Patricia", "Elizabeth", "Dorothy", "Joan", "Barbara", "Jean", "Sheila",
              "Susan", "Irene", "Renée", "Brenda", "Catherine", "Maureen", "Eileen", "Doreen",
              "Pauline", "Valerie", "Christine", "Sylvia", "Beryl", "Marjorie", "Hélène", "Winifred"]
MALE_YOUNG = ["Oliver", "Jack", "Harry", "Noah", "Leo", "Muhammad", "Jacob", "Daniel", "Liam",
              "José", "Thomas", "James", "William", "Charlie", "George", "Ethan", "Samuel", "Adam",
              "Mateusz", "Piotr", "Lukasz", "Ryan", "Callum", "Joshua", "Dylan", "Michael", "Robert"]
FEMALE_YOUNG = ["Olivia", "Amelia", "Isla", "Ava", "Zoë", "Chloë", "Sophie", "Emily", "Grace",
                "Mia", "Anaïs", "Lily", "Freya", "Ella", "Jessica", "Hannah", "Chloe", "Zoe",
                "Aoife", "Niamh", "Agnieszka", "Katherine", "Elizabeth", "Rebecca", "Laura", "Naomi"]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
            "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Hughes", "Edwards", "Turner",
            "Harris", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee",
            "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips",
            "Watson", "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell",
            "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw",
            "Murphy", "Miller", "Cox", "Richards", "Penrose", "Trevithick", "Pascoe", "Tremayne",
            "Nowak", "Kowalski", "Müller", "O'Brien", "O'Neill", "O'Connor", "D’Arcy",
            "D’Souza", "McCarthy", "MacDonald", "Ó Súilleabháin", "Fernández", "Gonçalves",
            "Brontë", "Smith-Jones", "Ahmed", "Begum", "Hussain", "Nguyen", "Da Silva"]

NICKNAMES = {
    "William": "Bill", "Robert": "Bob", "Margaret": "Peggy", "Elizabeth": "Liz",
    "Catherine": "Kate", "James": "Jim", "Richard": "Dick", "Thomas": "Tom",
    "Patricia": "Pat", "Susan": "Sue", "Michael": "Mike", "Edward": "Ted", "Dorothy": "Dot",
    "Anthony": "Tony", "Frederick": "Fred", "Kenneth": "Ken", "Raymond": "Ray",
    "Katherine": "Katie", "Samuel": "Sam", "Joshua": "Josh", "Daniel": "Dan",
    "Albert": "Bert", "Leonard": "Len", "Stanley": "Stan", "Christine": "Chris",
    "Rebecca": "Becky", "Jessica": "Jess", "Charlie": "Charles", "Valerie": "Val",
}

WARD_NAMES = ["Harbour", "Castle", "Abbey", "Riverside Central", "Northcliffe", "Saltmarsh",
              "Lighthouse", "Westgate", "Meadowbank", "Quayside", "Hillcrest", "Eastbrook"]
WARD_PREFIX = ["North", "South", "East", "West", "Upper", "Lower", "Old", "New"]
WARD_ROOTS = ["Harbour", "Castle", "Abbey", "Moor", "Cliff", "Marsh", "Vale", "Brook",
              "Heath", "Quay", "Down", "Combe"]
STREET_ROOTS = ["Harbour", "Church", "Station", "Mill", "Quay", "Chapel", "Victoria", "Albert",
                "Park", "Cliff", "Beach", "Fore", "Market", "Castle", "Abbey", "Meadow", "Orchard",
                "Lighthouse", "Anchor", "Mariners", "Coastguard", "Priory", "Trinity", "Beacon",
                "Lifeboat", "Gull", "Heron", "Kingfisher", "Oak", "Elm", "Ash", "Willow", "Rowan"]
STREET_SUFFIX = ["Road", "Street", "Lane", "Close", "Avenue", "Way", "Terrace", "Crescent",
                 "Gardens", "Drive", "Hill", "Court", "Place", "Row"]

CANARIES = [
    ("Ottoline", "Zzcanaryquist", "F"),
    ("Barnaby", "Zzcanaryvale", "M"),
    ("Philippa", "Zzcanarywick", "F"),
    ("Ignatius", "Zzcanarymoor", "M"),
    ("Henrietta", "Zzcanaryholt", "F"),
]

EXTERNAL_POSTCODES = ["ZZ99 3VZ", "EX4 1AA", "EX2 5DW", "PL1 2AB", "PL4 8AA", "TR1 3XY",
                      "BS1 4DJ", "TA1 1SB", "BA1 1LZ", "SW1A 1AA", "M1 1AE", "B1 1BB",
                      "CF10 1EP", "TQ1 2AB", "DT1 1XJ"]
