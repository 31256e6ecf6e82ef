/**
 * Real cities the simulator places stations in, with a plausible climate for each: daily mean
 * and half-range of temperature, mean relative humidity, mean PM2.5. Pressures are sea-level
 * (what weather stations report), so high cities such as Nairobi stay in range.
 */
export type City = {
  name: string
  lat: number
  lng: number
  /** °C, daily mean */
  meanTemperature: number
  /** °C, half the daily swing */
  temperatureAmplitude: number
  /** % */
  meanHumidity: number
  /** µg/m³ */
  meanPm25: number
}

export const cities: readonly City[] = [
  {
    name: 'Berlin',
    lat: 52.52,
    lng: 13.405,
    meanTemperature: 10,
    temperatureAmplitude: 5,
    meanHumidity: 75,
    meanPm25: 15,
  },
  {
    name: 'Lisbon',
    lat: 38.7223,
    lng: -9.1393,
    meanTemperature: 17,
    temperatureAmplitude: 5,
    meanHumidity: 70,
    meanPm25: 10,
  },
  {
    name: 'Nairobi',
    lat: -1.2921,
    lng: 36.8219,
    meanTemperature: 19,
    temperatureAmplitude: 6,
    meanHumidity: 65,
    meanPm25: 25,
  },
  {
    name: 'São Paulo',
    lat: -23.5505,
    lng: -46.6333,
    meanTemperature: 20,
    temperatureAmplitude: 5,
    meanHumidity: 75,
    meanPm25: 20,
  },
  {
    name: 'Tokyo',
    lat: 35.6762,
    lng: 139.6503,
    meanTemperature: 16,
    temperatureAmplitude: 4,
    meanHumidity: 65,
    meanPm25: 12,
  },
  {
    name: 'Toronto',
    lat: 43.6532,
    lng: -79.3832,
    meanTemperature: 9,
    temperatureAmplitude: 5,
    meanHumidity: 70,
    meanPm25: 8,
  },
  {
    name: 'Sydney',
    lat: -33.8688,
    lng: 151.2093,
    meanTemperature: 18,
    temperatureAmplitude: 4,
    meanHumidity: 65,
    meanPm25: 8,
  },
  {
    name: 'Delhi',
    lat: 28.6139,
    lng: 77.209,
    meanTemperature: 25,
    temperatureAmplitude: 7,
    meanHumidity: 55,
    meanPm25: 90,
  },
]
